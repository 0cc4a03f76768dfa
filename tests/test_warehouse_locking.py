"""Locking across processes: DuckDB admits one read-write process or several readers.

A helper process holds a connection and answers commands on stdin ("count" → number of
reports it sees, "exit"), so the test controls exactly when the lock is held.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.settings import PROJECT_ROOT
from warehouse.backend.connect import connect, snapshot, snapshot_path
from warehouse.backend.errors import WarehouseLockedError
from warehouse.writer.load import load_pages
from tests.reports import T0, make_page
from tests.spilling import assert_two_spill_at_once

_HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "count":
        print(con.execute("select count(*) from reports").fetchone()[0], flush=True)
    else:
        break
"""


class Holder:
    """A separate process holding the DuckDB file open."""

    def __init__(self, path: Path, mode: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), mode],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def count(self) -> int:
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("exit\n")
            self.proc.stdin.flush()
        self.proc.wait(timeout=10)


@pytest.fixture
def warehouse_file(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    con = connect(path)
    load_pages(con, "run-1", [make_page("IDX-1")], T0)
    con.close()
    return path


def test_reader_on_main_file_makes_writer_wait_then_fail_clearly(warehouse_file: Path) -> None:
    reader = Holder(warehouse_file, "ro")
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseLockedError) as caught:
            connect(warehouse_file, lock_timeout=0.8)
        assert time.monotonic() - started >= 0.8
    finally:
        reader.close()
    message = str(caught.value)
    assert str(warehouse_file) in message
    assert f"PID {reader.proc.pid}" in message and "waiting 0.8 s" in message
    assert "snapshot.duckdb" in message and caught.value.transient
    connect(warehouse_file, lock_timeout=5).close()  # released: opens at once


@pytest.mark.parametrize("read_only", [False, True], ids=["writer", "reader"])
def test_connect_waits_until_a_writer_process_exits(warehouse_file: Path, read_only: bool) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time, duckdb; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(1.0)", str(warehouse_file)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    started = time.monotonic()
    con = connect(warehouse_file, read_only=read_only, lock_timeout=15)
    waited = time.monotonic() - started
    con.close()
    holder.wait(timeout=10)
    assert 0.3 < waited < 15


def test_snapshot_readers_never_block_the_writer(warehouse_file: Path) -> None:
    published = snapshot(warehouse_file)
    assert published == snapshot_path(warehouse_file) == warehouse_file.with_name(
        "warehouse.snapshot.duckdb")
    reader = Holder(published, "ro")
    try:
        assert reader.count() == 1
        con = connect(warehouse_file, lock_timeout=1)  # the writer opens at once
        load_pages(con, "run-2", [make_page("IDX-2")], T0)
        con.close()
        snapshot(warehouse_file, lock_timeout=1)  # replaces the file the reader has open
        assert reader.count() == 1  # the old reader keeps its consistent old snapshot
        fresh = Holder(published, "ro")
        assert fresh.count() == 2
        fresh.close()
    finally:
        reader.close()
    assert not list(warehouse_file.parent.glob(".*.tmp"))


def test_snapshot_from_a_process_that_holds_the_writer(warehouse_file: Path) -> None:
    con = connect(warehouse_file)  # snapshot() shares this process's open database
    load_pages(con, "run-2", [make_page("IDX-2")], T0)
    published = snapshot(warehouse_file)
    reader = Holder(published, "ro")
    try:
        assert reader.count() == 2
    finally:
        reader.close()
        con.close()


# A writer that spills (a temp table over its memory budget) and is killed holding it.
_KILLED_SPILLING = """
import os, signal, sys
sys.path.insert(0, sys.argv[2])
from warehouse.backend.connect import connect
con = connect(sys.argv[1])
con.execute("set memory_limit = '24MB'")
con.execute("create temp table big as select i, repeat(md5(i::varchar), 8) as s from range(400000) as t(i)")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_writer_removes_the_spill_files_a_killed_writer_left(warehouse_file: Path, caplog) -> None:
    killed = subprocess.run([sys.executable, "-c", _KILLED_SPILLING, str(warehouse_file), str(PROJECT_ROOT)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    spill_dir = Path(f"{warehouse_file}.tmp")
    left = sum(f.stat().st_size for f in spill_dir.glob("duckdb_temp_*"))
    assert left > 10 * 2**20  # the killed writer's spilled temp table is still on disk

    with connect(warehouse_file, read_only=True) as reader:  # a reader leaves them: a writer could still come back
        assert reader.execute("select count(*) from reports").fetchone() == (1,)
    assert sum(f.stat().st_size for f in spill_dir.glob("duckdb_temp_*")) == left

    with caplog.at_level("INFO", logger="warehouse.backend.spill"), connect(warehouse_file) as writer:
        assert not list(spill_dir.glob("duckdb_temp_*"))
        assert writer.execute("select count(*) from reports").fetchone() == (1,)
    assert f"removed {left / 2**20:.1f} MB of spill files an interrupted writer left in {spill_dir}" in caplog.text


def test_two_readers_of_the_file_spilling_at_once_each_spill_into_a_directory_of_their_own(
        warehouse_file: Path) -> None:  # fmt: skip
    # DuckDB's default, <file>.tmp for every process reading the file: both readers crashed.
    assert_two_spill_at_once(str(warehouse_file), read_only=True)


def test_a_process_opens_the_file_read_only_twice_at_once(warehouse_file: Path) -> None:
    # the two share DuckDB's database: a spill directory of their own must be the same one
    with connect(warehouse_file, read_only=True) as first, connect(warehouse_file, read_only=True) as second:
        assert first.execute("select count(*) from reports").fetchone() == second.execute(
            "select count(*) from reports").fetchone() == (1,)  # fmt: skip
