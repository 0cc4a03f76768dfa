"""The raw archive on each of its backends, for tests: a fixture that gives a test an empty
archive location on SQLite and on PostgreSQL in turn, and plain SQL on it from outside.

The PostgreSQL archives live in one database of the session's server (tests/postgres.py),
one schema per test; a run without the server skips the PostgreSQL half, saying why
(`make test` requires it).
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tasks.crawl.archive import PostgresArchive
from tasks.crawl.archive.location import ArchiveLocation

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def archive_database(postgres) -> str:
    """One database for the session's PostgreSQL archives; its DSN."""
    return postgres.create_database("archive_tests")


def postgres_location(request: pytest.FixtureRequest) -> PostgresArchive:
    """A schema of its own for the requesting test (named after it: rerunnable, unique)."""
    dsn = request.getfixturevalue("archive_database")
    schema = "t_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return PostgresArchive(dsn, schema)


@pytest.fixture(params=BACKENDS)
def archive_location(request: pytest.FixtureRequest, tmp_path: Path) -> ArchiveLocation:
    """An empty archive's location, on each backend in turn."""
    if request.param == "sqlite":
        return tmp_path / "archive.sqlite"
    return postgres_location(request)


def query(where: ArchiveLocation, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run `sql` (written with `?` placeholders) on the archive from outside it; its rows."""
    if isinstance(where, PostgresArchive):
        with psycopg.connect(where.dsn, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {where.schema}")
            cursor = conn.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []
    with closing(sqlite3.connect(where)) as conn, conn:
        return conn.execute(sql, params).fetchall()


def count(where: ArchiveLocation, table: str) -> int:
    return int(query(where, f"SELECT count(*) FROM {table}")[0][0])


def schema_version(where: ArchiveLocation) -> int:
    if isinstance(where, PostgresArchive):
        return int(query(where, "SELECT version FROM archive_version")[0][0])
    return int(query(where, "PRAGMA user_version")[0][0])


def set_schema_version(where: ArchiveLocation, version: int) -> None:
    if isinstance(where, PostgresArchive):
        query(where, "UPDATE archive_version SET version = ?", (version,))
    else:
        query(where, f"PRAGMA user_version = {int(version)}")


def setting(where: ArchiveLocation) -> str:
    """The location as a command line names it (the schema goes by GOVETL_ARCHIVE_SCHEMA)."""
    return f"postgres:{where.dsn}" if isinstance(where, PostgresArchive) else str(where)


def env_for(where: ArchiveLocation) -> dict[str, str]:
    """Environment a subprocess needs to open `where` by its setting."""
    return {"GOVETL_ARCHIVE_SCHEMA": where.schema} if isinstance(where, PostgresArchive) else {}
