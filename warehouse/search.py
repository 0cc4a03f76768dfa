"""Maintain the bigram search index (search_sections, search_terms).

Design and the reason for not using DuckDB's fts extension: migrations/0003_search.sql.
Querying is the `search(q)` table macro (views/60_search.sql).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from warehouse.tx import transaction

_INDEX_SQL = Path(__file__).resolve().parent / "sql" / "search_index.sql"


def refresh_search_index(con: duckdb.DuckDBPyConnection) -> None:
    """Rewrite the postings of the reports listed in temp table `touched_reports`."""
    con.execute(_INDEX_SQL.read_text(encoding="utf-8"))


def rebuild_search_index(con: duckdb.DuckDBPyConnection) -> None:
    """Re-index every report, e.g. after a migration changed the search_tokens macro."""
    with transaction(con):
        con.execute("create or replace temp table touched_reports as select index_no from reports")
        refresh_search_index(con)
        con.execute("drop table touched_reports")
