"""The warehouse as a DuckLake: a PostgreSQL catalog and Parquet files, for many writers at once.

A DuckDB file admits one writer process. A DuckLake keeps the same tables as Parquet files
under a data path (a directory here, object storage in production) and their catalog (which
files make which table, at which snapshot) in a PostgreSQL database; every commit is a new
snapshot, taken with optimistic concurrency, so runs on several machines can load into one
warehouse. The warehouse setting names it `ducklake:postgres:<libpq key=value DSN>`
(tasks/settings.py: WAREHOUSE, LAKE_DATA_PATH); a DuckDB session holds it attached as `lake`,
its default database, over an in-memory DuckDB that keeps the writer's temporary tables.

What DuckLake (extension 1.5.5, format 1.0) cannot do, and what stands in for it:
- No PRIMARY KEY, UNIQUE or CHECK constraints, no indexes, no sequences. The lake's tables
  are those of the migrations without them (warehouse/schema/migrate.py derives them); keys are kept
  by the loader (schema/tables.py: merge, insert_only, replace_children) and verified after every
  load by the unique-key checks, CHECK constraints by checks of their own
  (warehouse/quality/checks.py); the search index's doc_id is a hash of the load and section there
  (writer/sql/search_index.sql), not a sequence's next value.
- No INSERT OR REPLACE / ON CONFLICT (they need a key): the writer's statements use MERGE
  INTO, which both backends run.
- Appends never conflict: two transactions inserting the same new key both commit. So every
  transaction that writes keyed rows also updates the one row of `govetl_lake.claims`
  (`claim`): of two such transactions running at once the second to commit conflicts, and
  `retrying` runs it again on the snapshot that has the first one's rows. A transaction that
  updates or deletes rows of a table conflicts with any concurrent write to that table
  (DuckLake decides per table, measured: tests/test_lake.py); those are retried the same way.
- No single-file snapshot to publish: analysts attach the lake read-only and read its latest
  snapshot (or an older one: `AT (VERSION => n)`), never blocking a writer. A run that wrote
  ends with DuckLake's maintenance instead (`maintain`).

The extensions come from the wheels in the lock (duckdb-extension-ducklake,
duckdb-extension-postgres-scanner): INSTALL from the file inside the installed package, then
LOAD; DuckDB never asks the network for one (autoinstall off).

`python -m warehouse.analyst.lake_cli` prints the analyst's ATTACH lines and what the lake's
snapshots wrote (make lake-demo, make lake-sql).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import duckdb

from tasks import settings
from warehouse.backend.errors import WarehouseError
from warehouse.backend.spill import spill_directory
from warehouse.backend.tx import in_transaction, one_row, sql_literal

log = logging.getLogger(__name__)
T = TypeVar("T")

ALIAS = "lake"  # the lake's name in a DuckDB session (and its default database there)
# The lake's own bookkeeping, apart from the warehouse's tables (schema main).
CLAIMS_TABLE = "govetl_lake.claims"
# Extension name → the Python package (a wheel of the lock) that carries its file.
EXTENSIONS: dict[str, str] = {"ducklake": "duckdb_extension_ducklake",
                              "postgres_scanner": "duckdb_extension_postgres_scanner"}
_CONFLICT = "Transaction conflict"  # how DuckLake words a commit that lost to a concurrent one


class LakeError(WarehouseError):
    """The lake cannot be used as configured; the one-line message says why (never a password)."""


class LakeUnavailable(LakeError):
    """The lake's PostgreSQL catalog does not answer (down, wrong host or port, no such database)."""

    transient = True


@dataclass(frozen=True)
class Lake:
    """A DuckLake named by the warehouse setting."""

    dsn: str  # libpq key=value DSN of the PostgreSQL database holding the catalog
    data_path: str | None = None  # where its Parquet files go; needed only to create it

    @property
    def attach_path(self) -> str:
        return f"{settings.LAKE_PREFIX}{self.dsn}"

    def __str__(self) -> str:
        return settings.redact_dsn(self.attach_path)


def lake_of(target: str | os.PathLike, data_path: str | None = None) -> Lake | None:
    """The lake `target` names, or None for a DuckDB file. The data path is LAKE_DATA_PATH
    unless given; a local one is made absolute (the catalog keeps it for every later writer)."""
    try:
        dsn = settings.lake_catalog(target)
    except ValueError as exc:
        raise LakeError(str(exc)) from None
    if dsn is None:
        return None
    data_path = data_path or settings.LAKE_DATA_PATH or None
    return Lake(dsn, _absolute(data_path) if data_path else None)


def is_lake(target: str | os.PathLike) -> bool:
    return lake_of(target) is not None


def _absolute(path: str) -> str:
    if "://" in path:  # object storage
        return path.rstrip("/") + "/"
    return str(Path(path).resolve()) + "/"


# --- extensions ----------------------------------------------------------------------------
def extension_file(name: str) -> Path:
    """The .duckdb_extension file of `name` inside its installed wheel, for this DuckDB."""
    package = EXTENSIONS[name]
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        found = Path(folder) / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
        if found.exists():
            return found
    raise LakeError(f"the DuckDB extension {name} for DuckDB {duckdb.__version__} is not installed "
                    f"(package {package.replace('_', '-')}=={duckdb.__version__}, in requirements.lock): "
                    "make setup installs it")


def load_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """INSTALL each extension from its wheel's file (a copy into DuckDB's extension directory,
    skipped when there), then LOAD it. Nothing is downloaded."""
    for name in EXTENSIONS:
        con.execute(f"install {sql_literal(str(extension_file(name)))}")
        con.execute(f"load {name}")


def attach_statements(lake: Lake, *, read_only: bool = True) -> list[str]:
    """What a DuckDB session runs to read (or write) the lake: the analyst's lines too."""
    mode = " (read_only)" if read_only else ""
    return ([f"install {sql_literal(str(extension_file(name)))}" for name in EXTENSIONS]
            + [f"load {name}" for name in EXTENSIONS]
            + [f"attach {sql_literal(lake.attach_path)} as {ALIAS}{mode}", f"use {ALIAS}"])


# --- connections ---------------------------------------------------------------------------
def open_lake(lake: Lake, *, read_only: bool,
              config: dict[str, str | bool | int | float | list[str]] | None = None) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the lake. A writer creates the lake if its
    catalog database is empty (LAKE_DATA_PATH, else data/lake/).

    The connection is a cursor of an in-memory DuckDB kept for the process, one per lake and
    mode: loading the two extensions costs DuckDB about 0.6 s per instance (it verifies their
    signatures), and a run connects several times. Each cursor has its own transactions and
    temporary tables; `config` applies when the instance is made."""
    key = (lake.dsn, read_only)
    with _INSTANCES_LOCK:
        base = _INSTANCES.pop(key, None)
        if base is not None and not _answers(base):
            base.close()
            base = None
        if base is None:
            base = _new_instance(lake, read_only, config)
        _INSTANCES[key] = base  # the most recently used last
        while len(_INSTANCES) > _INSTANCES_KEPT:
            _INSTANCES.pop(next(iter(_INSTANCES))).close()
        con = base.cursor()
    con.execute(f"use {ALIAS}")
    return con


_INSTANCES: dict[tuple[str, bool], duckdb.DuckDBPyConnection] = {}
_INSTANCES_LOCK = threading.Lock()
_INSTANCES_KEPT = 4  # lakes a process keeps attached (one, in a run; a test session makes many)


def _new_instance(lake: Lake, read_only: bool,
                  config: dict[str, str | bool | int | float | list[str]] | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "temp_directory": str(spill_directory(f"{lake.dsn} {read_only}")),
                                             **(config or {})})
    try:
        load_extensions(con)
        _attach(con, lake, read_only)
    except BaseException:
        con.close()
        raise
    return con


def _answers(base: duckdb.DuckDBPyConnection) -> bool:
    """Does a kept instance still reach its catalog (a PostgreSQL restart ends its sessions)?"""
    try:
        base.execute(f"select id from ducklake_current_snapshot('{ALIAS}')").fetchall()
        return True
    except duckdb.Error:
        return False


def forget_instances(lake: Lake | None = None) -> None:
    """Close the instances kept for the process (for `lake` only, if given): their catalog
    sessions end (PostgreSQL copies a database as a template only when nobody is in it)."""
    with _INSTANCES_LOCK:
        for key in [k for k in _INSTANCES if lake is None or k[0] == lake.dsn]:
            _INSTANCES.pop(key).close()


def _attach(con: duckdb.DuckDBPyConnection, lake: Lake, read_only: bool) -> None:
    target = sql_literal(lake.attach_path)
    options = ["read_only"] if read_only else []
    if lake.data_path and not read_only:
        options.append(f"data_path {sql_literal(lake.data_path)}")
    try:
        con.execute(f"attach {target} as {ALIAS}" + (f" ({', '.join(options)})" if options else ""))
        return
    except duckdb.Error as exc:
        message = str(exc)
        if read_only or "data_path is not set" not in message:
            raise _attach_error(lake, message, read_only) from None
    # A new lake, and no data path configured: the default one.
    data_path = _absolute(str(settings.LAKE_DEFAULT_DATA_PATH))
    Path(data_path).mkdir(parents=True, exist_ok=True)
    try:
        con.execute(f"attach {target} as {ALIAS} (data_path {sql_literal(data_path)})")
    except duckdb.Error as exc:
        raise _attach_error(lake, str(exc), read_only) from None
    log.info("created the lake %s, its files in %s", lake, data_path)


_PG_REASON = re.compile(r'Unable to connect to Postgres at "[^"]*": (?P<reason>.*)', re.S)


def _attach_error(lake: Lake, message: str, read_only: bool) -> LakeError:
    """DuckDB's refusal to attach, as one line naming the lake (without its password)."""
    if match := _PG_REASON.search(message):
        reason = " ".join(match["reason"].split())
        return LakeUnavailable(f"the lake's PostgreSQL catalog does not answer ({lake}): {settings.redact_dsn(reason)}")
    if "does not exist" in message and read_only:
        return LakeError(f"no lake at {lake}: its catalog database holds no DuckLake yet (a nightly run creates it)")
    if "does not match existing data path" in message:
        stored = re.search(r'existing data path in the catalog "([^"]*)"', message)
        return LakeError(f"the lake {lake} keeps its files in {stored[1] if stored else 'another data path'}, "
                         f"not {lake.data_path} (GOVETL_LAKE_DATA_PATH): unset it or set it to that path")
    return LakeError(f"cannot attach the lake {lake}: {settings.redact_dsn(' '.join(message.split()))}")


def is_lake_connection(con: duckdb.DuckDBPyConnection) -> bool:
    """Is the connection's default database a DuckLake?"""
    (kind,) = one_row(con, "select any_value(type) from duckdb_databases() where database_name = current_database()")
    return kind == "ducklake"


def check_reachable(lake: Lake) -> None:
    """Raise LakeUnavailable unless the catalog's PostgreSQL answers (a run's preflight)."""
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    try:
        con.execute(f"install {sql_literal(str(extension_file('postgres_scanner')))}")
        con.execute("load postgres_scanner")
        try:
            con.execute(f"attach {sql_literal(lake.dsn)} as catalog (type postgres, read_only)")
        except duckdb.Error as exc:
            raise _attach_error(lake, str(exc), read_only=True) from None
    finally:
        con.close()


# --- writing: conflicts and claims ------------------------------------------------------------
def retrying(con: duckdb.DuckDBPyConnection, work: Callable[[], T], *, what: str) -> T:
    """Run `work` (one whole transaction, opened inside it) and, on a lake, run it again when
    its commit conflicts with another writer's (up to LAKE_COMMIT_ATTEMPTS times, pausing
    longer each time). Inside an outer transaction it runs once: the outermost caller retries.
    On a DuckDB file it simply runs: one writer, nothing to conflict with."""
    if in_transaction(con) or not is_lake_connection(con):
        return work()
    pause = settings.LAKE_RETRY_PAUSE
    for attempt in range(1, settings.LAKE_COMMIT_ATTEMPTS + 1):
        try:
            return work()
        except duckdb.TransactionException as exc:
            if not is_conflict(exc) or attempt == settings.LAKE_COMMIT_ATTEMPTS:
                raise
            log.info("%s conflicted with another writer's commit (attempt %d): %s; again in %.2f s",
                     what, attempt, str(exc).splitlines()[-1], pause)
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 2, 5.0)
    raise AssertionError("unreachable")


def is_conflict(exc: BaseException) -> bool:
    """Did a commit fail because another transaction committed a conflicting change first?"""
    return isinstance(exc, duckdb.TransactionException) and _CONFLICT in str(exc)


def claim(con: duckdb.DuckDBPyConnection) -> None:
    """Make the open transaction conflict with any concurrent one that claims too (module doc):
    call it in a transaction that writes keyed rows. Nothing on a DuckDB file, whose writer
    is alone and whose primary keys hold."""
    if is_lake_connection(con):
        con.execute(f"update {CLAIMS_TABLE} set claims = claims + 1")


CLAIMS_DDL = f"""
create schema if not exists govetl_lake;
create table if not exists {CLAIMS_TABLE} (claims bigint not null);
comment on table {CLAIMS_TABLE} is 'One row, updated by every transaction that writes keyed rows, so that two of them never commit side by side (DuckLake has no unique constraints; warehouse/backend/lake.py).';
insert into {CLAIMS_TABLE} select 0 where not exists (select 1 from {CLAIMS_TABLE});
"""


# --- the end of a run: maintenance instead of a snapshot file ------------------------------------
def maintain(con: duckdb.DuckDBPyConnection, retention_days: float = settings.LAKE_SNAPSHOT_RETENTION_DAYS,
             compact_at: int = settings.LAKE_COMPACT_AT_FILES) -> list[str]:
    """DuckLake's maintenance after a run that wrote: snapshots older than `retention_days`
    expired and the files no snapshot needs any more deleted; and once a table has
    `compact_at` data or delete files, its small files compacted (inlined rows flushed to
    Parquet, deletes applied, adjacent files merged). Each load adds a file or two per table
    it writes, so a nightly run compacts every few nights, and the catalog stays small. A
    step that conflicts with another writer's commit is left to the next run. Returns what
    was done, as phrases for the log."""
    keep = f"now() - interval '{int(timedelta(days=retention_days).total_seconds())} seconds'"
    steps = {"expired old snapshots": f"call ducklake_expire_snapshots('{ALIAS}', older_than => {keep})",
             "deleted unreferenced files": f"call ducklake_cleanup_old_files('{ALIAS}', older_than => {keep})"}
    (files,) = one_row(con, f"select coalesce(max(file_count + delete_file_count), 0) from ducklake_table_info('{ALIAS}')")
    if files >= compact_at:
        steps = {"flushed inlined rows": f"call ducklake_flush_inlined_data('{ALIAS}')",
                 "applied deletes": f"call ducklake_rewrite_data_files('{ALIAS}')",
                 "merged adjacent files": f"call ducklake_merge_adjacent_files('{ALIAS}')"} | steps
    done = []
    for phrase, sql in steps.items():
        try:
            rows = con.execute(sql).fetchall()
        except duckdb.TransactionException as exc:
            if not is_conflict(exc):
                raise
            log.info("lake maintenance: %s skipped, another writer committed meanwhile (the next run does it)", phrase)
            continue
        if rows:
            done.append(f"{phrase} ({len(rows)})")
    return done


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    """The id of the lake's latest snapshot (each commit that changed something makes one)."""
    (snapshot,) = one_row(con, f"select id from ducklake_current_snapshot('{ALIAS}')")
    return int(snapshot)


def tables_changed_since(con: duckdb.DuckDBPyConnection, snapshot: int) -> dict[str, int]:
    """Tables of schema main written by the snapshots after `snapshot`: name → how many of
    those snapshots inserted into or deleted from it (a rerun over unchanged pages: the run
    ledger only)."""
    rows = con.execute(f"""
        with changed as (
            select unnest(coalesce(changes['tables_inserted_into'], []) || coalesce(changes['tables_deleted_from'], [])
                          || coalesce(changes['inlined_insert'], []) || coalesce(changes['inlined_delete'], [])) as table_id,
                   snapshot_id
            from ducklake_snapshots('{ALIAS}') where snapshot_id > {int(snapshot)})
        select t.table_name, count(distinct c.snapshot_id)
        from changed as c
        join __ducklake_metadata_{ALIAS}.ducklake_table as t on t.table_id::varchar = c.table_id and t.end_snapshot is null
        join __ducklake_metadata_{ALIAS}.ducklake_schema as s on s.schema_id = t.schema_id and s.schema_name = 'main'
        group by all order by all""").fetchall()
    return {name: int(count) for name, count in rows}

