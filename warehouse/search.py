"""Maintain the bigram search index (search_sections, search_terms).

Design and the reason for not using DuckDB's fts extension: migrations/0003_search.sql.
Querying is the `search(q)` table macro (views/60_search.sql).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from tasks import settings
from warehouse.tx import transaction

_INDEX_SQL = Path(__file__).resolve().parent / "sql" / "search_index.sql"


def refresh_search_index(con: duckdb.DuckDBPyConnection) -> None:
    """Rewrite the postings of the reports listed in temp table `touched_reports`."""
    con.execute(_INDEX_SQL.read_text(encoding="utf-8"))


def rebuild_search_index(con: duckdb.DuckDBPyConnection, reports_per_transaction: int = settings.BATCH_SIZE) -> int:
    """Re-index every report, e.g. after a migration changed the search_tokens macro; return
    how many. A batch of reports per transaction, as the loader writes them: one statement
    over a whole corpus (millions of postings) needs far more than the writer's memory budget."""
    keys = [key for (key,) in con.execute("select index_no from reports order by index_no").fetchall()]
    for start in range(0, len(keys), reports_per_transaction):
        with transaction(con):
            con.execute("create or replace temp table touched_reports as select unnest(?::varchar[]) as index_no",
                        [keys[start:start + reports_per_transaction]])  # fmt: skip
            refresh_search_index(con)
            con.execute("drop table touched_reports")
    return len(keys)
