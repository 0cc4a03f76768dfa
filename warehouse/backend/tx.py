"""One DuckDB transaction around a unit of work; the one row a query must return; text quoted
into the statements that take no parameters (ATTACH, INSTALL, COPY, COMMENT, SET)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb

# Connections inside a `transaction` block, by id. DuckDB offers no "in a transaction?"
# query, and a failed BEGIN would abort the open transaction, so we keep track ourselves.
_open: set[int] = set()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, or ROLLBACK on any exception.

    Nested use joins the outer block (which commits or rolls back), so
    `with transaction(con): record_fetch_log(...); load_pages(...)` is one atomic write.
    Open outer transactions with this helper, not with a bare `con.begin()`.
    """
    if id(con) in _open:
        yield con
        return
    con.begin()
    _open.add(id(con))
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    else:
        con.commit()
    finally:
        _open.discard(id(con))


def in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """Is `con` inside a `transaction` block? (A retry of a conflicting commit, warehouse/backend/lake.py,
    is the outermost block's to make.)"""
    return id(con) in _open


def one_row(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] | None = None) -> tuple[Any, ...]:
    """The row of a query that always returns one (an aggregate, a setting, COPY's count)."""
    # fetchall, not fetchone: DuckDB 2.0 (python -m warehouse.backend.upgrade) refuses to register an
    # Arrow stream on a connection whose last result was not read to its end
    rows = con.execute(sql, params).fetchall()
    if not rows:
        raise duckdb.InvalidInputException(f"query returned no row: {sql.strip()[:200]}")
    return rows[0]


def sql_literal(text: str) -> str:
    """A text as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A name (table, catalog, sequence) as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
