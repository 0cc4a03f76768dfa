"""The archive in a SQLite file: the single-machine default (data/archive/archive.sqlite).

One connection in WAL mode, shared by the threads under a lock; a write transaction is
`BEGIN IMMEDIATE`, which takes the file's write lock at once (no upgrade deadlocks between
processes, each waiting up to ARCHIVE_BUSY_TIMEOUT). WAL with synchronous = NORMAL: a
kill -9 at any point leaves each transaction whole or absent. Opening runs SQLite's
`PRAGMA quick_check`; an error SQLite reports as damage (SQLITE_CORRUPT, SQLITE_NOTADB)
becomes ArchiveDamagedError wherever it is met, a full disk is remembered (`disk_full`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from tasks import settings
from tasks.crawl.archive.dialect import Row, Session
from tasks.crawl.archive.errors import ArchiveDamagedError

DRIVER_ERRORS = (sqlite3.Error,)
DATA_ERRORS = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, sqlite3.ProgrammingError)
COLUMN_TYPES = {"fetch_id": "INTEGER", "real": "REAL", "blob": "BLOB", "rowid": ""}
_DAMAGE_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")  # sqlite_errorname prefixes of a damaged file


class SQLiteSession:
    """Statements on the archive's connection (dialect.Session)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        return self._conn.execute(sql, params or {}).rowcount

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> int:
        return self._conn.executemany(sql, rows).rowcount if rows else 0

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._conn.execute(sql, params or {}).fetchall()

    def cursor(self, sql: str, params: Mapping[str, Any]) -> Iterator[Row]:
        """The rows of a query as SQLite reads them."""
        return self._conn.execute(sql, params)


class SQLiteDatabase:
    """An archive file, open and checked (dialect.Database); ArchiveDamagedError if damaged."""

    column_types = COLUMN_TYPES
    data_errors = DATA_ERRORS

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # one connection, used by one thread at a time
        self._disk_full: str | None = None
        self._conn = _open_checked(path)
        self._session = SQLiteSession(self._conn)

    @contextmanager
    def write(self) -> Iterator[SQLiteSession]:
        with self._lock, self._damage_named():
            try:
                self._conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks
                try:
                    yield self._session
                except BaseException:
                    if self._conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                        self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" and self._disk_full is None:
                    self._disk_full = f"{self.path}: {exc}"
                raise

    @contextmanager
    def read(self) -> Iterator[SQLiteSession]:
        with self._lock, self._damage_named():
            yield self._session

    def stream(self, sql: str, params: Mapping[str, Any]) -> Iterator[Row]:
        with reader(self.path) as session, self._damage_named():
            yield from session.cursor(sql, params)

    def schema_version(self, session: Session) -> int:
        return int(session.rows("PRAGMA user_version")[0]["user_version"])

    def set_schema_version(self, session: Session, version: int) -> None:
        session.execute(f"PRAGMA user_version = {int(version)}")

    def disk_full(self) -> str | None:
        return self._disk_full

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _damage_named(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise _damage(self.path, exc) or exc


def _rows_as_dicts(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (write()), never implicit.
    conn = sqlite3.connect(path, timeout=settings.ARCHIVE_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    conn.row_factory = _rows_as_dicts
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: consistent after any crash
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def reader(path: Path) -> Iterator[SQLiteSession]:
    """Reads on a read-only connection of their own (one snapshot while the file is written)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=settings.ARCHIVE_BUSY_TIMEOUT)
    conn.row_factory = _rows_as_dicts
    with closing(conn):
        yield SQLiteSession(conn)


def _open_checked(path: Path) -> sqlite3.Connection:
    """_connect, then SQLite's quick_check (every page and index of the file is read);
    ArchiveDamagedError if the file is damaged or not a database at all."""
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(path)
        problems = [row["quick_check"] for row in conn.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise _damage(path, exc) or exc from None
    if problems != ["ok"]:
        conn.close()
        raise ArchiveDamagedError(path, "quick_check: " + "; ".join(problems))
    return conn


def _damage(path: Path, exc: sqlite3.DatabaseError) -> ArchiveDamagedError | None:
    """The ArchiveDamagedError an SQLite error means, if it says the file is damaged."""
    if getattr(exc, "sqlite_errorname", "").startswith(_DAMAGE_CODES):
        return ArchiveDamagedError(path, str(exc))
    return None


def check(path: Path) -> str:
    """Raise ArchiveDamagedError if the file is damaged; never creates one."""
    _open_checked(path).close()
    return "ok"


def exists(path: Path) -> bool:
    return path.exists()


def set_aside(path: Path, now: datetime) -> list[str]:
    """Rename a (damaged) archive and its -wal/-shm files to <name>.damaged-<UTC time>, so
    that the next run starts a new one; return the new names."""
    stamp = f"{now:%Y%m%dT%H%M%SZ}"
    moved = []
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if part.exists():
            target = part.with_name(part.name.replace(path.name, f"{path.name}.damaged-{stamp}", 1))
            part.rename(target)
            moved.append(str(target))
    return moved
