"""What the archive's logic (store.py) needs of a database, and where the two backends differ.

The logic and its SQL (schema.py) are written once, in the SQL both SQLite and PostgreSQL
run: named parameters (`:name`, each backend binds them its own way), `ON CONFLICT`
upserts with the target's columns qualified by its table name, `IS DISTINCT FROM`,
`CAST(:p AS TEXT) IS NULL` where a parameter may be NULL (PostgreSQL must know its type),
no backend functions (SQLite's two-argument max(), PostgreSQL's greatest() are avoided),
every column read by name, timestamps as ISO 8601 text in UTC. What differs lives in the
backends, behind the two protocols below:

| | SQLite (sqlite.py) | PostgreSQL (postgres.py) |
|---|---|---|
| where | one file (`archive.sqlite`) | one schema (`raw_archive`) of a database |
| one writer at a time | `BEGIN IMMEDIATE` (the file's write lock) | `pg_advisory_xact_lock` keyed by the schema |
| connections | one, shared by the threads under a lock | a bounded pool, one connection per thread at a time |
| column types | INTEGER, REAL, BLOB; `rowid` built in | BIGINT, DOUBLE PRECISION, BYTEA; `rowid` an identity column |
| schema version | `PRAGMA user_version` | table `archive_version` |
| streaming | a read-only connection of its own | a server-side cursor on a pooled connection |
| integrity | `PRAGMA quick_check` when opened | the tables of its version present |
| set aside | the file renamed `.damaged-<time>` | the schema renamed `<schema>_damaged_<time>` |
| NUL in text (a header, a link text) | kept | U+FFFD (PostgreSQL text cannot hold it) |

Every write transaction holds the archive's write lock from its first statement, on both:
the logic reads and writes in one transaction as if alone (a fetch id is the last id + 1
at the least, the frontier's moves read the fetch log), and a fetch id is visible before
any later one is issued, so that `fetch_log_after(id)` misses nothing a reader has not
seen. Reads take no lock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

Row = dict[str, Any]


class Session(Protocol):
    """Statements on one connection: within a write transaction, or reads."""

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run one statement; return the rows it changed."""

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run one statement per parameter set; return the rows they changed."""

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run a query; return its rows as dicts keyed by column name."""


class Database(Protocol):
    """An open archive database: sessions, its schema version, and what went wrong."""

    @property
    def column_types(self) -> Mapping[str, str]:
        """What the placeholders of schema.MIGRATIONS stand for on this backend."""

    @property
    def data_errors(self) -> tuple[type[Exception], ...]:
        """The driver's errors for a value the database refused (a write that may succeed
        without it)."""

    def write(self) -> AbstractContextManager[Session]:
        """One transaction holding the archive's write lock: committed when the block ends,
        rolled back if it raises."""

    def read(self) -> AbstractContextManager[Session]:
        """Reads of committed data."""

    def stream(self, sql: str, params: Mapping[str, Any]) -> Iterator[Row]:
        """The rows of a query, read from one snapshot while other sessions write."""

    def schema_version(self, session: Session) -> int:
        """The archive's schema version (0: a new archive), inside a write transaction."""

    def set_schema_version(self, session: Session, version: int) -> None: ...

    def disk_full(self) -> str | None:
        """Why a write was refused for want of disk space, if one was (the first refusal)."""

    def close(self) -> None: ...
