"""A damaged warehouse is named with the command that heals it; that command rebuilds the
warehouse from the raw archive with its version history (warehouse/backend/rebuild.py,
flows/rebuild.py). No network: the archive is written here, page by page, as a crawler would have."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import yaml

from flows.rebuild import rebuild, replay_batches
from tasks.crawl.archive import ArchivedFetch, RawArchive
from tasks.records import FetchOutcome, FetchResult
from tasks.settings import PROJECT_ROOT
from tests.faultserver import report_page
from warehouse.backend.connect import connect
from warehouse.backend.errors import WarehouseDamaged
from warehouse.backend.rebuild import check_warehouse, damage_of, rebuild_command
from warehouse.writer.load import load_pages
from tests.reports import T0, make_page

pytestmark = pytest.mark.timeout(120)

SITE = "http://127.0.0.1:9"
NIGHT = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)


# --- check_warehouse -----------------------------------------------------------------------
@pytest.fixture
def sound(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "warehouse.duckdb"
    con = connect(path)
    load_pages(con, "run-1", [make_page(f"IDX-{n}") for n in range(30)], T0)
    con.close()
    return path


def scribble(path: Path, offset: int, size: int = 4096) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(b"\xa5" * size)


def test_a_sound_a_missing_and_a_locked_warehouse_pass(sound, tmp_path) -> None:
    check_warehouse(sound)
    check_warehouse(tmp_path / "nowhere.duckdb")
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); sys.stdin.readline()", str(sound)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        check_warehouse(sound)  # a writer holds it: the run waits for the lock, as ever
    finally:
        holder.communicate("\n", timeout=30)


def test_a_warehouse_whose_checkpoint_cut_free_blocks_off_its_end_is_sound(tmp_path) -> None:
    # What a reprocess does: data rewritten, then a checkpoint. DuckDB shortens the file by
    # the free blocks at its end, and pragma database_size still counts them in total_blocks.
    path = tmp_path / "shrunk.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table kept as select range as i, md5(range::varchar) as s from range(300000)")
    con.execute("checkpoint")
    con.execute("create table dropped as select range as i, md5(range::varchar) as s from range(300000)")
    con.execute("checkpoint")
    full = path.stat().st_size
    con.execute("drop table dropped")
    con.execute("checkpoint")
    con.close()
    with duckdb.connect(str(path), read_only=True) as reopened:
        _, _, block_size, total_blocks, *_ = reopened.execute("pragma database_size").fetchone()
    assert path.stat().st_size < min(full, total_blocks * block_size)  # the case this test is about

    check_warehouse(path)


@pytest.mark.parametrize("damage", ["not_duckdb", "header_block", "truncated", "wal"])
def test_a_damaged_warehouse_is_named_with_the_command_that_rebuilds_it(sound, damage) -> None:
    if damage == "not_duckdb":
        sound.write_bytes(b"<html>an error page saved over the warehouse</html>" * 100)
    elif damage == "header_block":
        scribble(sound, 4096)
    elif damage == "truncated":
        with sound.open("r+b") as f:
            f.truncate(sound.stat().st_size // 2)
    else:  # a write that never reached a checkpoint, then its WAL damaged
        con = duckdb.connect(str(sound))
        con.execute("set checkpoint_threshold = '1TB'")
        con.execute("insert into runs (run_id, started_at, status) values ('r', now(), 'running')")
        con.execute("update reports set title = 'x'")
        shutil.copyfile(sound.with_name(sound.name + ".wal"), sound.with_name("saved.wal"))
        con.close()  # checkpoints; put the WAL back as a crash would have left it, then damage it
        shutil.copyfile(sound.with_name("saved.wal"), sound.with_name(sound.name + ".wal"))
        scribble(sound.with_name(sound.name + ".wal"), 200, 64)

    with pytest.raises(WarehouseDamaged) as caught:
        check_warehouse(sound, archive_dir="/srv/archive")

    message = str(caught.value)
    assert "\n" not in message and str(sound) in message
    assert f"`python -m flows.rebuild --warehouse {sound} --archive /srv/archive`" in message
    assert caught.value.command == rebuild_command(sound, "/srv/archive")


def test_a_corruption_error_mid_run_is_told_as_damage() -> None:
    corrupt = duckdb.IOException('IO Error: Corrupt database file: computed checksum 1 does not match stored '
                                 'checksum 2 in block at location 4096')  # fmt: skip
    damaged = damage_of(corrupt, "data/warehouse.duckdb")
    assert damaged is not None and "python -m flows.rebuild --warehouse data/warehouse.duckdb" in str(damaged)
    assert damage_of(duckdb.IOException("Could not set lock on file"), "w.duckdb") is None
    assert damage_of(OSError("disk full"), "w.duckdb") is None


# --- the rebuild ------------------------------------------------------------------------------
def fetched(url: str, body: bytes, at: datetime, final_url: str | None = None) -> FetchResult:
    return FetchResult(url=url, outcome=FetchOutcome.FETCHED, final_url=final_url or url, status=200, body=body,
                       content_type="text/html; charset=utf-8", fetched_at=at, attempts=1)  # fmt: skip


def gone(url: str, at: datetime) -> FetchResult:
    return FetchResult(url=url, outcome=FetchOutcome.HTTP_ERROR, final_url=url, status=404, fetched_at=at,
                       reason="HTTP 404", attempts=1)  # fmt: skip


@pytest.fixture
def nights(tmp_path: Path) -> Path:
    """Three nights in a raw archive beside a warehouse: page 1 first states no 索引号, then one,
    then changes; page 2 is loaded, then answers 404; page 3 is renumbered (another 索引号)."""
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": [{
        "name": "a", "region": "甲县", "listing_urls": [f"{SITE}/a/list/index.html"], "allowed_hosts": ["127.0.0.1"],
    }]}, allow_unicode=True), encoding="utf-8")  # fmt: skip
    urls = [f"{SITE}/a/art/{n}.html" for n in (1, 2, 3)]
    with RawArchive(tmp_path / "data" / "archive" / "archive.sqlite") as archive:
        archive.record("night-1", "a", fetched(urls[0], report_page(None), NIGHT))
        archive.record("night-1", "a", fetched(urls[1], report_page("IDX/2"), NIGHT))
        archive.record("night-1", "a", fetched(urls[2], report_page("IDX/3"), NIGHT))
        archive.record("night-2", "a", fetched(urls[0], report_page("IDX/1"), NIGHT + timedelta(days=1)))
        archive.record("night-2", "a", fetched(urls[2], report_page("IDX/3-NEW"), NIGHT + timedelta(days=1)))
        archive.record("night-3", "a", fetched(urls[0], report_page("IDX/1", extra="补充：新增床位20张。"),
                                               NIGHT + timedelta(days=2)))  # fmt: skip
        archive.record("night-3", "a", gone(urls[1], NIGHT + timedelta(days=2)))
    return tmp_path


def test_the_rebuild_replays_every_fetch_so_history_is_as_the_nights_told_it(nights) -> None:
    warehouse = nights / "data" / "warehouse.duckdb"
    warehouse.write_bytes(b"not a warehouse any more" * 1000)  # damaged, with a WAL beside it
    warehouse.with_name("warehouse.duckdb.wal").write_bytes(b"stale")
    with pytest.raises(WarehouseDamaged):
        check_warehouse(warehouse)

    result = rebuild(warehouse, sources_file=nights / "sources.yaml")

    check_warehouse(warehouse)
    assert result.was_damaged and result.backup is not None and result.backup.name.startswith("warehouse.duckdb.damaged-")
    assert result.backup.read_bytes().startswith(b"not a warehouse")
    assert result.backup.with_name(result.backup.name + ".wal").read_bytes() == b"stale"
    assert not warehouse.with_name("warehouse.duckdb.wal").exists()
    assert (result.pages, result.reports, result.current) == (6, 4, 3)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        reports = con.execute("select index_no, version, key_kind, former_key is not null, superseded_by, gone_at "
                              "from reports order by 1").fetchall()  # fmt: skip
        assert reports == [("IDX/1", 3, "index_no", True, None, None),
                           ("IDX/2", 1, "index_no", False, None, datetime(2024, 5, 3, 2, 0)),
                           ("IDX/3", 1, "index_no", False, "IDX/3-NEW", None),
                           ("IDX/3-NEW", 1, "index_no", False, None, None)]
        versions = con.execute("select version, observed_at from report_versions where index_no = 'IDX/1' "
                               "order by version").fetchall()  # fmt: skip
        assert versions == [(n + 1, datetime(2024, 5, 1 + n, 2, 0)) for n in range(3)]  # dated by their fetches
        assert con.execute("select count(*) from fetch_log").fetchone() == (7,)
        assert con.execute("select run_id, status from runs").fetchall() == [(result.run_id, "completed")]
        assert con.execute("select count(*) from latest_reports").fetchone() == (3,)
    finally:
        con.close()
    with RawArchive(nights / "data" / "archive" / "archive.sqlite") as archive:
        assert archive.loaded_run_ids() == {result.run_id} and archive.unloaded() == []
    assert (nights / "data" / "warehouse.snapshot.duckdb").exists()


def test_replay_batches_never_hold_one_url_twice_nor_two_runs() -> None:
    def fetch(n: int, url: str, run: str) -> ArchivedFetch:
        return ArchivedFetch(n, run, "a", url, url, FetchOutcome.FETCHED, 200, None, NIGHT, None, None, None)

    fetched = [fetch(1, "u1", "r1"), fetch(2, "u2", "r1"), fetch(3, "u1", "r1"), fetch(4, "u3", "r1"),
               fetch(5, "u4", "r2"), fetch(6, "u5", "r2"), fetch(7, "u6", "r2")]  # fmt: skip
    batches = [[f.fetch_id for f in b] for b in replay_batches(reversed(fetched), 2)]
    assert batches == [[1, 2], [3, 4], [5, 6], [7]]


def test_the_rebuild_command_prints_one_line_and_fails_in_one_line_without_an_archive(nights, tmp_path) -> None:
    warehouse = nights / "data" / "warehouse.duckdb"
    done = subprocess.run([sys.executable, "-m", "flows.rebuild", "--warehouse", str(warehouse),
                           "--sources", str(nights / "sources.yaml")], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"rebuilt {warehouse} from the raw archive: 6 archived fetch(es)")
    assert "Traceback" not in done.stderr

    elsewhere = tmp_path / "empty" / "warehouse.duckdb"
    failed = subprocess.run([sys.executable, "-m", "flows.rebuild", "--warehouse", str(elsewhere)],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert failed.returncode == 1 and len(failed.stderr.strip().splitlines()) == 1
    assert failed.stderr.startswith(f"rebuild failed: no raw archive at {elsewhere.parent / 'archive'}")
    assert not os.path.exists(elsewhere)

