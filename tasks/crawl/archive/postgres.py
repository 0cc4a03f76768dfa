"""The archive in PostgreSQL: one schema of a database every worker can reach.

    --archive 'postgres:host=db.internal dbname=govetl user=etl'    (or GOVETL_ARCHIVE=…)

The tables are the SQLite archive's (schema.py), in schema `raw_archive` (GOVETL_ARCHIVE_SCHEMA)
of the database the libpq connection string names; a password is best kept out of it
(PGPASSWORD, ~/.pgpass), and is never printed. Many processes may write one archive at
once (two runs of different sources, workers of a cluster): every write transaction first
takes a transaction-scoped advisory lock keyed by the schema, so writers take turns as
they do on SQLite's file lock (dialect.py says why), and a turn is a few statements long.

Connections: a bounded pool per open archive (ARCHIVE_PG_CONNECTIONS), each connection used
by one thread at a time; a thread waits up to ARCHIVE_BUSY_TIMEOUT for one, and as long
for the write lock (lock_timeout). A broken connection is dropped and replaced on the next
use. Errors: a server that cannot be reached or refuses the connection (or a wait that ran
out) is ArchiveUnavailableError; a table of the schema gone is ArchiveDamagedError; a full
disk on the server is an OSError ENOSPC naming the archive, as a full local disk is.

The location (PostgresArchive, the `postgres:` setting) is postgres_location.py's: this
module, and psycopg with it, is imported only when an archive in PostgreSQL is used.
"""

from __future__ import annotations

import errno
import hashlib
import re
import shlex
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from tasks import settings
from tasks.crawl.archive.dialect import Row, Session
from tasks.crawl.archive.errors import ArchiveDamagedError, ArchiveUnavailableError
from tasks.crawl.archive.postgres_location import PostgresArchive
from tasks.crawl.archive.postgres_location import first_line as _first_line
from tasks.crawl.archive.schema import SCHEMA_VERSION, tables_at

DRIVER_ERRORS = (psycopg.Error,)
DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError)  # a value refused (psycopg.errors' classes 22, 23)
COLUMN_TYPES = {"fetch_id": "BIGINT", "real": "DOUBLE PRECISION", "blob": "BYTEA",
                "rowid": "rowid BIGINT GENERATED ALWAYS AS IDENTITY,"}  # fmt: skip
_VERSION_TABLE = "archive_version"


class PostgresSession:
    """Statements on one pooled connection (dialect.Session); `:name` parameters become
    psycopg's `%(name)s`."""

    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        return self._conn.execute(_bound(sql), _storable(params)).rowcount

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> int:
        if len(rows) < 2:  # executemany's pipeline costs more than it saves for one row
            return self.execute(sql, rows[0]) if rows else 0
        with self._conn.cursor() as cursor:
            cursor.executemany(_bound(sql), [_storable(row) for row in rows])
            return cursor.rowcount

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._conn.execute(_bound(sql), _storable(params)).fetchall()


class PostgresDatabase:
    """An open archive in PostgreSQL (dialect.Database): a pool of connections to it."""

    column_types = COLUMN_TYPES
    data_errors = DATA_ERRORS

    def __init__(self, where: PostgresArchive) -> None:
        self.where = where
        self._lock_key = _lock_key(where.schema)
        self._disk_full: str | None = None
        self._pool = _Pool(lambda: _connect(where), where, settings.ARCHIVE_PG_CONNECTIONS,
                           settings.ARCHIVE_BUSY_TIMEOUT)  # fmt: skip
        check(where)  # reachable and sound, or ArchiveUnavailableError / ArchiveDamagedError now, not mid-run

    @contextmanager
    def write(self) -> Iterator[PostgresSession]:
        with self._translated(), self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [self._lock_key])
            yield PostgresSession(conn)

    @contextmanager
    def read(self) -> Iterator[PostgresSession]:
        with self._translated(), self._pool.connection() as conn:
            yield PostgresSession(conn)

    def stream(self, sql: str, params: Mapping[str, Any]) -> Iterator[Row]:
        with self._translated(), self._pool.connection() as conn, conn.transaction():
            with conn.cursor(name="archive_stream") as cursor:  # server-side: rows arrive as they are read
                cursor.itersize = 2000
                cursor.execute(_bound(sql), _storable(params))
                yield from cursor

    def schema_version(self, session: Session) -> int:
        # Under the write lock: two openers of a new archive create it once.
        session.execute(f"CREATE SCHEMA IF NOT EXISTS {self.where.schema}")
        session.execute(f"CREATE TABLE IF NOT EXISTS {_VERSION_TABLE} (version INTEGER NOT NULL)")
        rows = session.rows(f"SELECT version FROM {_VERSION_TABLE}")
        return int(rows[0]["version"]) if rows else 0

    def set_schema_version(self, session: Session, version: int) -> None:
        session.execute(f"DELETE FROM {_VERSION_TABLE}")
        session.execute(f"INSERT INTO {_VERSION_TABLE} (version) VALUES (:version)", {"version": version})

    def disk_full(self) -> str | None:
        return self._disk_full

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            with _translated(self.where):
                yield
        except OSError as exc:
            if exc.errno == errno.ENOSPC and self._disk_full is None:
                self._disk_full = f"{self.where}: {exc.strerror}"
            raise


class _Pool:
    """At most `size` connections, each lent to one thread at a time; idle ones are kept.
    Created on demand, so an archive used by one thread holds one connection."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Row]], where: PostgresArchive, size: int,
                 wait: float) -> None:  # fmt: skip
        self._connect, self._where, self._size, self._wait = connect, where, max(2, size), wait
        self._slots = threading.BoundedSemaphore(self._size)  # 2 at least: a stream and a write
        self._idle: list[psycopg.Connection[Row]] = []
        self._guard = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Row]]:
        if not self._slots.acquire(timeout=self._wait):
            raise ArchiveUnavailableError(self._where, f"all {self._size} connections stayed busy for "
                                                       f"{self._wait:g} s (ARCHIVE_PG_CONNECTIONS)")  # fmt: skip
        try:
            with self._guard:
                conn = self._idle.pop() if self._idle else None
            conn = conn or self._connect()
            try:
                yield conn
            finally:
                self._give_back(conn)
        finally:
            self._slots.release()

    def _give_back(self, conn: psycopg.Connection[Row]) -> None:
        if conn.broken:  # the server went away (a restart): the idle connections went with it
            with self._guard:
                dropped, self._idle = self._idle, []
            for stale in [*dropped, conn]:
                stale.close()
        elif conn.closed or self._closed or conn.info.transaction_status != TransactionStatus.IDLE:
            conn.close()
        else:
            with self._guard:
                self._idle.append(conn)

    def close(self) -> None:
        """Close the idle connections now, the lent ones when they come back."""
        with self._guard:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _connect(where: PostgresArchive) -> psycopg.Connection[Row]:
    """A connection in autocommit mode (transactions are explicit), its search_path on the
    archive's schema, its lock waits bounded."""
    params = conninfo_to_dict(where.dsn)
    params.setdefault("connect_timeout", str(int(settings.ARCHIVE_PG_CONNECT_TIMEOUT)))
    params.setdefault("application_name", "govetl-archive")
    conn = psycopg.connect(make_conninfo("", **params), autocommit=True, row_factory=dict_row)
    conn.execute(pgsql.SQL("SET search_path TO {}; SET lock_timeout = {}").format(
        pgsql.Identifier(where.schema), pgsql.Literal(f"{settings.ARCHIVE_BUSY_TIMEOUT * 1000:.0f}ms")))
    return conn


@contextmanager
def _translated(where: PostgresArchive) -> Iterator[None]:
    """psycopg's errors as the archive's (module docstring); others as they are."""
    try:
        yield
    except psycopg.errors.DiskFull as exc:
        raise OSError(errno.ENOSPC, _first_line(exc), str(where)) from None
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        raise _damaged(where, _first_line(exc)) from None
    except psycopg.OperationalError as exc:
        raise ArchiveUnavailableError(where, _first_line(exc)) from None


@lru_cache(maxsize=None)
def _bound(sql: str) -> str:
    """The archive's `:name` parameters as psycopg's `%(name)s` (a literal % doubled)."""
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql.replace("%", "%%"))


def _storable(params: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """PostgreSQL text cannot hold NUL (SQLite's can): a NUL a server sent (in a header, a
    link text) becomes U+FFFD, in what is written and in what is looked up alike."""
    if not params:
        return {}
    if not any(isinstance(value, str) and "\x00" in value for value in params.values()):
        return params
    return {key: value.replace("\x00", "\ufffd") if isinstance(value, str) else value
            for key, value in params.items()}  # fmt: skip


def _lock_key(schema: str) -> int:
    """The advisory lock of one archive: a signed 64-bit number derived from its schema."""
    return int.from_bytes(hashlib.sha256(f"govetl raw archive {schema}".encode()).digest()[:8], "big", signed=True)


def _damaged(where: PostgresArchive, detail: str) -> ArchiveDamagedError:
    return ArchiveDamagedError(where, detail, setting=where.command("set-aside"),
                               salvage=f"`pg_dump --schema={where.schema} {shlex.quote(where.shown_dsn)} "
                                       f"> {where.schema}.sql`")  # fmt: skip


@contextmanager
def reader(where: PostgresArchive) -> Iterator[PostgresSession]:
    """Reads on a connection of their own (not the pool's)."""
    with _translated(where), _connect(where) as conn:
        yield PostgresSession(conn)


def schema_exists(where: PostgresArchive) -> bool:
    """Does the database hold the archive's schema? (ArchiveUnavailableError if it cannot
    be asked.)"""
    with _translated(where), _connect(where) as conn:
        return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [where.schema]).fetchone() is not None


# --- the command line: check, set aside --------------------------------------------------
def check(where: PostgresArchive) -> str:
    """Reachable, and the tables its schema version promises are there (ArchiveDamagedError
    if not); never creates anything. Returns what was found, in a few words."""
    with _translated(where), _connect(where) as conn:
        version_table = conn.execute("SELECT to_regclass(%s) AS t", [f"{where.schema}.{_VERSION_TABLE}"]).fetchone()
        if version_table is None or version_table["t"] is None:
            return "no archive yet (the first run creates it)"
        rows = conn.execute(f"SELECT version FROM {_VERSION_TABLE}").fetchall()
        version = int(rows[0]["version"]) if rows else 0
        present = {row["tablename"] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s",
                                                            [where.schema])}  # fmt: skip
    missing = sorted(tables_at(min(version, SCHEMA_VERSION)) - present)
    if missing:
        raise _damaged(where, f"schema version {version} without table(s) {', '.join(missing)}")
    if version > SCHEMA_VERSION:
        return f"ok, schema version {version} (newer than this code's {SCHEMA_VERSION}: update the code)"
    return f"ok, schema version {version}"


def set_aside(where: PostgresArchive, now: datetime) -> list[str]:
    """Rename the archive's schema to <schema>_damaged_<UTC time>, under its write lock, so
    that the next run starts a new archive in the schema; return the new name."""
    target = f"{where.schema[:38]}_damaged_{now:%Y%m%dt%H%M%Sz}"  # 63 characters at most
    with _translated(where), _connect(where) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(where.schema)])
        conn.execute(pgsql.SQL("ALTER SCHEMA {} RENAME TO {}").format(pgsql.Identifier(where.schema),
                                                                      pgsql.Identifier(target)))  # fmt: skip
    return [target]
