"""One DuckDB transaction around a unit of work; the one row a query must return."""

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


def one_row(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] | None = None) -> tuple[Any, ...]:
    """The row of a query that always returns one (an aggregate, a setting, COPY's count)."""
    row = con.execute(sql, params).fetchone()
    if row is None:
        raise duckdb.InvalidInputException(f"query returned no row: {sql.strip()[:200]}")
    return row
