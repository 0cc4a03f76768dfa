"""Where DuckDB spills what exceeds a connection's memory budget, and what is left there.

DuckDB writes its spill files under fixed names (duckdb_temp_storage_<size class>-<n>.tmp)
in the connection's temp_directory, by default `<database file>.tmp` (none for an in-memory
database). Two processes spilling into one directory write over each other's blocks: two
read-only readers of one file, or two lake instances sharing a directory, crashed with a
segfault the moment both spilled (tests/test_lake.py, tests/test_warehouse_locking.py). So
every reader and every lake instance gets a directory of its own; the one writer of a file
keeps `<file>.tmp`, which its lock makes its own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import duckdb

from warehouse.backend.tx import one_row

log = logging.getLogger(__name__)

_SPILL_PREFIX = "govetl-duckdb-"
_SPILL_FILES = "duckdb_temp_*"  # duckdb_temp_storage_<size class>-<n>.tmp, duckdb_temp_block-<id>.block


def spill_directory(owner: str) -> Path:
    """The spill directory of this process for `owner` (a file's path, a lake): DuckDB makes
    it when it first spills and removes it when the last connection closes. One per owner,
    not one per connection: DuckDB shares one database between the connections of a process
    to one file, and refuses a second connection whose configuration differs. Directories of
    processes that no longer run (killed before DuckDB could remove them) are removed first."""
    root = Path(tempfile.gettempdir())
    for stale in root.glob(f"{_SPILL_PREFIX}*-*"):
        pid = stale.name.removeprefix(_SPILL_PREFIX).split("-")[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return root / f"{_SPILL_PREFIX}{os.getpid()}-{hashlib.sha1(owner.encode()).hexdigest()[:12]}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        return True
    return True


def remove_stale_spill_files(con: duckdb.DuckDBPyConnection) -> int:
    """Delete the spill files a killed writer left in the file's temp directory
    (`<warehouse>.tmp/`; a writer that exits cleanly removes its own); return the bytes freed.
    Safe only for the writer, before its first query: it holds the file's lock, so no other
    process can be spilling there, and it has not spilled yet itself."""
    (directory,) = one_row(con, "select current_setting('temp_directory')")
    freed = 0
    for leftover in Path(directory).glob(_SPILL_FILES) if directory else ():
        try:
            size = leftover.stat().st_size
            leftover.unlink()
        except FileNotFoundError:
            continue
        freed += size
    if freed:
        log.info("removed %.1f MB of spill files an interrupted writer left in %s", freed / 2**20, directory)
    return freed
