"""One DuckDB transaction around a unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
