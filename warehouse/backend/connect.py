"""Open the warehouse: one writer process or several readers, and snapshots for analysts.

The warehouse is a DuckDB file or a DuckLake (`ducklake:postgres:<dsn>`, warehouse/backend/lake.py);
every function here takes either, as the warehouse setting names it.

DuckDB locks the file per process: one read-write process OR any number of read-only
ones. `connect` waits (with backoff) for a lock held by another process, then fails
with a `WarehouseLockedError` that says who holds it. Analysts should read the snapshot
that `snapshot` publishes after each successful run, so they never block the nightly load.
A lake has neither: its writers commit snapshots side by side, its readers attach it
read-only, and the end of a run is DuckLake's maintenance instead of a published copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from tasks import settings
from warehouse.backend.errors import WarehouseFormatError, WarehouseLockedError
from warehouse.backend.lake import is_lake_connection, lake_of, maintain, open_lake
from warehouse.backend.spill import remove_stale_spill_files, spill_directory
from warehouse.backend.tx import one_row, sql_identifier, sql_literal
from warehouse.schema.migrate import migrate

log = logging.getLogger(__name__)

_LOCK_MESSAGE = "Could not set lock on file"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<holder>.*?) \(PID (?P<pid>\d+)\)")
_BACKOFF_START_S, _BACKOFF_MAX_S = 0.05, 1.0
# DuckDB's refusal of a file in a storage format it does not read (a newer release's).
_FORMAT_MESSAGE = "Trying to read a database file with version number"
# The storage format of the files this project creates: DuckDB 1.5's own, about half the size
# of the default (readable since DuckDB 0.10) on this warehouse. A file keeps the format it
# was created in. Readers need DuckDB >= 1.5 (the CLI of `make sql` is 1.5.5).
STORAGE_VERSION = "v1.5.0"


def connect(path: str | os.PathLike, *, read_only: bool = False,
            lock_timeout: float = settings.WAREHOUSE_LOCK_TIMEOUT) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (a file or a lake); a writer connection also brings the schema up
    to date. A lake has no file lock to wait for: `lock_timeout` is the file's."""
    lake = lake_of(path)
    if lake is not None:
        con = open_lake(lake, read_only=read_only, config={} if read_only else _writer_config(lake=True))
    else:
        path = Path(path)
        if read_only and not path.exists():
            raise FileNotFoundError(f"no warehouse at {path} (read-only connections do not create one)")
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        con = _open_waiting_for_lock(path, read_only, lock_timeout)
        if not read_only:
            remove_stale_spill_files(con)
    con.execute("set enable_progress_bar = false")  # no terminal bar in flow logs
    if not read_only:
        try:
            migrate(con)
        except BaseException:
            con.close()
            raise
    return con


def _open_waiting_for_lock(path: Path, read_only: bool,
                           timeout: float) -> duckdb.DuckDBPyConnection:
    started = time.monotonic()
    delay = _BACKOFF_START_S
    while True:
        try:
            if read_only:
                return open_file(path, read_only=True)
            return _open_writer(path, _writer_config(lake=False))
        except duckdb.IOException as exc:
            if _LOCK_MESSAGE not in str(exc):
                raise
            waited = time.monotonic() - started
            if waited >= timeout:
                raise _locked_error(path, waited, read_only, str(exc)) from exc
            log.info("warehouse %s is locked by another process; retrying in %.2f s", path, delay)
            time.sleep(min(delay, max(timeout - waited, 0.0)))
            delay = min(delay * 2, _BACKOFF_MAX_S)


def budget_setting(con: duckdb.DuckDBPyConnection) -> str:
    """The environment setting of the writer's memory budget on `con`'s backend (what an
    operator raises when loads keep outgrowing it)."""
    return "GOVETL_LAKE_MEMORY_LIMIT" if is_lake_connection(con) else "GOVETL_WAREHOUSE_MEMORY_LIMIT"


def _writer_config(*, lake: bool) -> dict[str, str | bool | int | float | list[str]]:
    """The writer keeps to a memory budget; without insertion order DuckDB can stream
    aggregates and inserts instead of buffering them (the ETL never relies on it). A file is
    created in DuckDB 1.5's storage format (a lake's files are Parquet), and a load
    transaction writes each full row group (122,880 rows) of a table to it at once, rather
    than buffering five (DuckDB's default): a large transaction's rows then go to the file,
    compressed, as they are inserted, within the budget, instead of to the WAL at commit and
    again at the checkpoint (tasks/settings.py: LOAD_TRANSACTION_ROWS)."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": settings.LAKE_MEMORY_LIMIT if lake else settings.WAREHOUSE_MEMORY_LIMIT,
        "preserve_insertion_order": False}
    if not lake:
        config["storage_compatibility_version"] = STORAGE_VERSION
        config["write_buffer_row_group_count"] = 1
        config["threads"] = settings.WAREHOUSE_THREADS
    return config


# Catalog names DuckDB holds already: a file named after one is attached under another name.
_TAKEN_CATALOGS = {"memory", "system", "temp", "main"}


def _open_writer(path: Path, config: dict[str, str | bool | int | float | list[str]]) -> duckdb.DuckDBPyConnection:
    """The writer's connection: a DuckDB instance in memory with the file attached under its
    usual name (the file's stem) and in use. Attaching is DuckDB 1.5's only way to set a
    file's row group size (settings.WAREHOUSE_ROW_GROUP_SIZE). The instance is named after
    the file, so that every writer connection of this process shares it, as connections to
    one file path share one DuckDB instance (a run that is interrupted records it on a
    connection of its own, beside the load's). Spill files go where they would go anyway
    (`<file>.tmp`, warehouse/backend/spill.py); refusals are DuckDB's own, as `open_file` says."""
    alias = sql_identifier(path.stem if path.stem.lower() not in _TAKEN_CATALOGS else "warehouse")
    instance = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    con = duckdb.connect(f":memory:govetl-{instance}", config={**config, "temp_directory": f"{path}.tmp"})
    try:
        con.execute(f"attach if not exists {sql_literal(str(path))} as {alias} "
                    f"(row_group_size {settings.WAREHOUSE_ROW_GROUP_SIZE:d})")
        con.execute(f"use {alias}")
    except duckdb.IOException as exc:
        con.close()
        _raise_if_newer_format(path, exc)
        raise
    except BaseException:
        con.close()
        raise
    return con


def open_file(path: Path, *, read_only: bool,
              config: dict[str, str | bool | int | float | list[str]] | None = None) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, with a file in a newer DuckDB's format refused by a WarehouseFormatError
    that names the command converting it (DuckDB's own message spans four lines)."""
    if read_only:  # readers of one file share its spill directory (<file>.tmp) unless told otherwise
        config = {"temp_directory": str(spill_directory(str(Path(path).resolve()))), **(config or {})}
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config or {})
    except duckdb.IOException as exc:
        _raise_if_newer_format(path, exc)
        raise


def _raise_if_newer_format(path: Path, exc: duckdb.IOException) -> None:
    """DuckDB's refusal of a file in a newer DuckDB's format, as a WarehouseFormatError that
    names the command converting it; any other refusal (a lock) is left to the caller."""
    if _FORMAT_MESSAGE in str(exc):
        header = storage_header(path)
        raise WarehouseFormatError(path, header[1] if header else None, duckdb.__version__,
                                   _warehouse_of(path)) from None


def _warehouse_of(path: Path) -> Path:
    """The warehouse a snapshot was published from (the file itself if it is none)."""
    if path.name.endswith(".snapshot.duckdb"):
        main = path.with_name(path.name.removesuffix(".snapshot.duckdb") + ".duckdb")
        if main.exists():
            return main
    return path


def check_format(path: str | os.PathLike) -> None:
    """Raise WarehouseFormatError if `path` is a DuckDB file this DuckDB cannot open, deciding
    from its header where it can (a file written by this DuckDB's release line or an older
    one opens, and is not opened here: a writer may hold it). A lake is Parquet: nothing to check."""
    if lake_of(path) is not None:
        return
    path = Path(path)
    header = storage_header(path)
    if header is None or _release(header[1]) <= _release(duckdb.__version__):
        return
    try:
        open_file(path, read_only=True).close()
    except duckdb.IOException:  # held by a writer: it opens, then, and the run waits for it
        pass


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])


def storage_header(path: Path) -> tuple[int, str] | None:
    """(storage version number, version of the DuckDB that wrote it) from a DuckDB file's
    main header, or None if the file is not one (or is empty)."""
    try:
        with path.open("rb") as f:
            head = f.read(_HEADER_BYTES)
    except FileNotFoundError:
        return None
    if len(head) < _HEADER_BYTES or head[8:12] != b"DUCK":
        return None
    written_by = head[52:84].split(b"\0", 1)[0].decode("ascii", "replace")
    return int.from_bytes(head[12:20], "little"), written_by.removeprefix("v")


# The main header: checksum (8 bytes), "DUCK", version number (uint64), 4 flags (uint64),
# then the library version that wrote the file ("v2.0.0", 32 bytes, NUL-padded).
_HEADER_BYTES = 84


def _locked_error(path: Path, waited: float, read_only: bool, message: str) -> WarehouseLockedError:
    match = _LOCK_HOLDER.search(message)
    pid = int(match["pid"]) if match else None
    holder = match["holder"] if match else None
    return WarehouseLockedError(path, waited, read_only, pid, holder)


_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


@contextmanager
def memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """Run the block under another DuckDB memory limit (e.g. "1GB"), then restore the old one."""
    if not _SIZE.match(limit):
        raise ValueError(f"not a DuckDB memory size: {limit!r}")
    (previous,) = one_row(con, "select current_setting('memory_limit')")
    con.execute(f"set memory_limit = '{limit}'")  # validated above: SET takes no parameters
    try:
        yield
    finally:
        _restore_memory_limit(con, previous)


_SHORT_OF_MEMORY = re.compile(r"memory limit|failed to pin block|could not allocate", re.IGNORECASE)


def out_of_memory(exc: BaseException) -> bool:
    """Did DuckDB refuse for want of memory under its limit? A statement's own commit that
    cannot pin a block raises a TransactionException ("Failed to commit: failed to pin block")."""
    return isinstance(exc, duckdb.OutOfMemoryException) or (
        isinstance(exc, duckdb.TransactionException) and bool(_SHORT_OF_MEMORY.search(str(exc))))


def _restore_memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> None:
    """Lower the limit again. DuckDB refuses while it holds more than that in memory; a
    checkpoint writes out what it can, and failing that the larger limit stays (the run
    goes on, using more memory) rather than failing the load that has just succeeded."""
    lower = f"set memory_limit = '{limit}'"
    try:
        con.execute(lower)
    except duckdb.OutOfMemoryException:
        try:
            if is_lake_connection(con):  # its CHECKPOINT is DuckLake's maintenance: not in mid-run
                raise
            con.execute("checkpoint")
            con.execute(lower)
        except duckdb.OutOfMemoryException as exc:
            log.warning("the DuckDB memory limit stays raised, above %s: %s", limit, str(exc).splitlines()[0])


def open_for_reading(path: str | os.PathLike) -> tuple[duckdb.DuckDBPyConnection, str | Path]:
    """A read-only connection to the analysts' snapshot when there is one, else to the
    warehouse itself; and which file it opened (a lake: the lake, at its latest snapshot)."""
    lake = lake_of(path)
    if lake is not None:
        return connect(path, read_only=True), str(lake)
    path = Path(path)
    snapshot = snapshot_path(path)
    chosen = snapshot if snapshot.exists() else path
    if not chosen.exists():
        raise FileNotFoundError(f"no warehouse at {path} (nor a snapshot at {snapshot})")
    return open_file(chosen, read_only=True), chosen


def snapshot_path(path: str | os.PathLike) -> Path:
    """Where `snapshot` publishes the analysts' copy: <stem>.snapshot.duckdb beside the file."""
    path = Path(path)
    return path.with_name(f"{path.stem}.snapshot.duckdb")


def snapshot(path: str | os.PathLike, *,
             lock_timeout: float = settings.WAREHOUSE_LOCK_TIMEOUT, wrote: bool = True) -> Path | None:
    """CHECKPOINT the warehouse and atomically publish a copy for read-only use.

    Call it after a run committed (not inside a transaction). The copy is written to a
    temporary file, verified by opening it, then renamed over the old snapshot: a reader
    that has the old snapshot open keeps reading the old file (its inode stays alive), and
    the next reader opens the new one. Readers of the snapshot never lock the main file.

    A lake publishes nothing (its readers see every committed snapshot): after a run that
    `wrote`, DuckLake's maintenance runs instead (warehouse.backend.lake.maintain); returns None.
    """
    if lake_of(path) is not None:
        if wrote:
            with connect(path) as con:
                done = maintain(con)
            log.info("lake maintenance: %s", ", ".join(done) or "nothing to do")
        return None
    path = Path(path)
    target = snapshot_path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    con = connect(path, lock_timeout=lock_timeout)  # in-process, shares an open instance
    try:
        con.execute("checkpoint")  # everything in the main file, nothing left in the WAL
        shutil.copyfile(path, tmp)
    finally:
        con.close()
    try:
        fsync_path(tmp)
        _verify_copy(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(target.parent)
    log.info("published warehouse snapshot %s", target)
    return target


def _verify_copy(path: Path) -> None:
    """Open the copy read-only and read from it, so a broken copy is never published."""
    check = open_file(path, read_only=True)
    try:
        check.execute("select count(*) from reports").fetchone()
    finally:
        check.close()


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory (so that a rename or unlink in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
