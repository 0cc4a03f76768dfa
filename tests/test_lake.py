"""The warehouse as a DuckLake on a PostgreSQL catalog (warehouse/backend/lake.py): extensions from
the wheels, the schema the migrations make there, what conflicts and how it is retried, two
processes writing at once, the run lock per source, a catalog that is down, the analyst's
read-only CLI. The behaviour both backends share runs on both in test_warehouse.py,
test_pipeline.py, test_faults_flow.py, test_export.py and test_search.py (@both_backends)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from tasks import settings
from tasks.crawl.runlock import RunLockedError, RunLockUnavailable, run_lock
from tasks.settings import PROJECT_ROOT
from tests.reports import T0, make_page
from tests.spilling import assert_two_spill_at_once
from warehouse.backend import lake as lakes
from warehouse.backend.connect import connect
from warehouse.backend.spill import spill_directory
from warehouse.quality.checks import run_checks
from warehouse.schema.migrate import lake_table_ddl, list_migrations, migrate, reference
from warehouse.schema.tables import TABLES
from warehouse.writer.load import load_pages, record_fetch_log

LEDGER = {"runs", "run_sources", "loads", "fetch_log"}


def _columns(con: duckdb.DuckDBPyConnection, database: str) -> list[tuple]:
    return con.execute("select table_name, column_name, data_type, is_nullable, comment from duckdb_columns() "
                       "where database_name = ? and schema_name = 'main' and table_name in "
                       "(select table_name from duckdb_tables() where database_name = ? and schema_name = 'main') "
                       "order by table_name, column_index", [database, database]).fetchall()  # fmt: skip


# --- extensions and schema ---------------------------------------------------------------
def test_the_extensions_are_installed_from_the_wheels_never_downloaded() -> None:
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    lakes.load_extensions(con)
    for name, package in lakes.EXTENSIONS.items():
        path = lakes.extension_file(name)
        assert package in path.parts and path.parts[-2] == f"v{duckdb.__version__}"
        loaded, version = con.execute("select loaded, install_mode from duckdb_extensions() where extension_name = ?",
                                      [name]).fetchone()  # fmt: skip
        assert loaded and version == "CUSTOM_PATH", (name, version)  # INSTALL '<file>', not the repository


def test_a_new_lake_has_the_migrations_tables_without_keys_and_its_checks_stand_in(new_lake) -> None:
    con = connect(new_lake())
    ref = reference()
    try:
        assert _columns(con, "lake") == _columns(ref, "memory")  # names, types, NOT NULL, comments
        assert con.execute("select count(*) from duckdb_constraints() where database_name = 'lake' "
                           "and constraint_type in ('PRIMARY KEY', 'UNIQUE', 'CHECK')").fetchone() == (0,)  # fmt: skip
        keyed = ref.execute("select distinct table_name from duckdb_constraints() where database_name = 'memory' "
                            "and constraint_type = 'PRIMARY KEY'").fetchall()  # fmt: skip
        assert {t for (t,) in keyed} <= {name for name, spec in TABLES.items() if spec.checked}  # checked instead
    finally:
        ref.close()
        con.close()


def test_a_lake_migrated_statement_by_statement_matches_one_created_at_once(postgres, tmp_path, monkeypatch) -> None:
    # Created at 0010, then 0011 (a table rebuilt with a CHECK, renamed) and 0012 (columns added,
    # a keyed table) applied as a lake applies a migration written after it was created.
    target = settings.LAKE_PREFIX + postgres.create_database("lake_stepwise")
    monkeypatch.setattr(settings, "LAKE_DATA_PATH", str(tmp_path / "files"))
    lake = lakes.lake_of(target)
    assert lake is not None
    con = lakes.open_lake(lake, read_only=False)  # migrated below, not by connect
    try:
        migrate(con, only=range(1, 11))
        con.execute("insert into runs (run_id, started_at, status) values ('r-1', timestamp '2024-01-01', 'completed')")
        migrate(con)
        ref = reference()
        try:
            assert _columns(con, "lake") == _columns(ref, "memory")
        finally:
            ref.close()
        assert con.execute("select run_id, status, timings from runs").fetchall() == [("r-1", "completed", None)]
        assert [v for (v,) in con.execute("select version from schema_migrations order by 1").fetchall()] == [
            m.version for m in list_migrations()]
    finally:
        con.close()
        lakes.forget_instances(lake)


def test_the_lake_form_of_a_keyed_table_keeps_not_null_and_drops_keys_and_checks() -> None:
    ref = reference()
    try:
        ddl = lake_table_ddl(ref, "runs", comments=False)
    finally:
        ref.close()
    assert '"run_id" VARCHAR not null' in ddl and '"status" VARCHAR not null' in ddl
    assert "primary" not in ddl.lower() and "check" not in ddl.lower()


# --- what conflicts, and the claim ---------------------------------------------------------
def _two_writers(target: str) -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]:
    """Two DuckDB instances on one lake: two writers, as two processes would be."""
    lake = lakes.lake_of(target)
    assert lake is not None
    first = lakes._new_instance(lake, False, None)
    second = lakes._new_instance(lake, False, None)
    for con in (first, second):
        con.execute("use lake")
    return first, second


def _race(first, second, one: str, other: str) -> bool:
    """Run the two statements in two open transactions, commit both: did the second conflict?"""
    first.execute("begin")
    second.execute("begin")
    first.execute(one)
    second.execute(other)
    first.execute("commit")
    try:
        second.execute("commit")
    except duckdb.TransactionException as exc:
        assert lakes.is_conflict(exc), exc
        return True
    return False


def test_appends_never_conflict_so_keyed_writes_claim_and_the_second_is_retried(new_lake) -> None:
    first, second = _two_writers(new_lake())
    try:
        new_key = "insert into unit_vocabulary values ('lake-test', 'count', 'x')"
        assert not _race(first, second, new_key, new_key)  # DuckLake has no unique constraint: both commit
        assert first.execute("select count(*) from unit_vocabulary where unit_norm = 'lake-test'").fetchone() == (2,)
        assert _race(first, second, "delete from unit_vocabulary where unit_norm = 'lake-test'", new_key)  # per table
        claimed = f"update {lakes.CLAIMS_TABLE} set claims = claims + 1; {new_key}"
        assert _race(first, second, claimed, claimed)  # what the loader does: the second retries
        assert first.execute("select count(*) from unit_vocabulary where unit_norm = 'lake-test'").fetchone() == (1,)
    finally:
        first.close()
        second.close()


# The loader in a process of its own: waits for the go file, then loads `batches` batches of
# its source's pages, each with one page that the other process loads too (the same report,
# same URL, same content), and its fetch-log rows (overlapping the other's).
WRITER = """
import logging, sys, time
from pathlib import Path
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
from tests.reports import T0, make_page
from warehouse.backend.connect import connect
from warehouse.writer.load import load_pages
target, source, batches, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
con = connect(target)
while not go.exists():
    time.sleep(0.01)
for b in range(batches):
    pages = [make_page(f"{source}-{b}-{i}", url=f"http://{source}.example/{b}/{i}", source=source) for i in range(4)]
    pages.append(make_page(f"SHARED-{b}", url=f"http://shared.example/{b}", source=source))
    rows = [{"fetch_id": 100 * b + i, "url": f"http://shared.example/{b}", "outcome": "fetched", "status": 200}
            for i in range(3)]
    load_pages(con, "run-" + source, pages, T0, fetch_log_rows=rows)
con.close()
"""


def test_two_processes_loading_different_sources_at_once_lose_and_duplicate_nothing(new_lake, tmp_path) -> None:
    target, go, batches = new_lake(), tmp_path / "go", 4
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, target, source, str(batches), str(go)],
                                cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for source in ("alpha", "beta")]  # fmt: skip
    time.sleep(2)  # both connected (the lake's extensions load in ~1 s)
    go.touch()
    logs = [w.communicate(timeout=240)[0] for w in writers]
    assert [w.returncode for w in writers] == [0, 0], logs

    con = connect(target, read_only=True)
    try:
        keys = 2 * 4 * batches + batches
        assert con.execute("select count(*), count(distinct index_no) from reports").fetchone() == (keys, keys)
        for table, key in [(name, spec.key) for name, spec in TABLES.items() if spec.layer in ("data", "search", "ops")]:
            duplicates = con.execute(f"select count(*) from (select {', '.join(key)} from {table} group by all "
                                     "having count(*) > 1)").fetchone()[0]  # fmt: skip
            assert duplicates == 0, table
        assert con.execute("select count(*) from report_urls where url like 'http://shared.example/%'").fetchone() == (
            batches,)
        assert con.execute("select count(*) from sections").fetchone()[0] == keys * 5  # every report whole
        assert con.execute("select count(*) from fetch_log").fetchone() == (3 * batches,)
        assert con.execute("select sum(new) from loads").fetchone() == (keys,)  # each new report counted once
    finally:
        con.close()
    retried = sum(log.count("conflicted with another writer's commit") for log in logs)
    assert retried >= 1, "the two writers never overlapped: the test proved nothing"
    with connect(target) as writer:
        assert [c for c in run_checks(writer, "after") if c.check_name.startswith("unique_key") and c.status != "pass"] == []


# --- the run lock of a lake: per source ----------------------------------------------------
HOLDER = """
import sys, time
from tasks.crawl.runlock import run_lock
with run_lock(sys.argv[1], sources=sys.argv[2].split(",")):
    print("held", flush=True)
    time.sleep(120)
"""


def test_the_run_lock_of_a_lake_keeps_a_source_apart_and_lets_others_run(new_lake) -> None:
    target = new_lake()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, target, "alpha,beta"], cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with run_lock(target, timeout=0, sources=["gamma", "delta"]):  # other sources: at once
            pass
        started = time.monotonic()
        with pytest.raises(RunLockedError) as refused, run_lock(target, timeout=1, sources=["gamma", "beta"]):
            pass
        assert time.monotonic() - started >= 1
        message = str(refused.value)
        assert f"another run is using {target} for source beta" in message
        assert f"pid {holder.pid} on " in message and "Nothing was fetched or written" in message
        with run_lock(target, timeout=0, sources=["gamma"]):  # the refused run held nothing on the way out
            pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # a killed holder's session ends: its locks go with it
        holder.wait(timeout=10)
    with run_lock(target, timeout=10, sources=["alpha", "beta"]):
        pass


def test_a_catalog_that_is_down_is_one_line_naming_it_without_its_password(tmp_path) -> None:
    down = "ducklake:postgres:host=127.0.0.1 port=1 user=govetl password=s3cret dbname=lake"
    with pytest.raises(RunLockUnavailable) as locked, run_lock(down, sources=["a"]):
        pass
    assert "s3cret" not in str(locked.value) and "port=1" in str(locked.value)
    done = subprocess.run([sys.executable, "-m", "flows.nightly", "--warehouse", down, "--archive", str(tmp_path)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("nightly run failed: the lake's PostgreSQL catalog does not answer")
    assert "password=***" in lines[0] and "s3cret" not in lines[0] and "Connection refused" in lines[0]


# --- analysts ------------------------------------------------------------------------------
def test_an_analyst_attaches_the_lake_read_only_from_the_duckdb_cli(new_lake) -> None:
    target = new_lake()
    with connect(target) as con:
        load_pages(con, "run-1", [make_page("CLI-1")], T0)
    lines = subprocess.run([sys.executable, "-m", "warehouse.analyst.lake_cli", "sql", target], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "install '" in lines and "(read_only)" in lines
    cli = Path(sys.executable).with_name("duckdb")
    asked = subprocess.run([str(cli), "-csv", "-c", lines + "select index_no, region from latest_reports; "
                            "select count(*) from search('养老床位');"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    assert "CLI-1,\"天台县\"" in asked.stdout and "\n1\n" in asked.stdout
    refused = subprocess.run([str(cli), "-c", lines + "delete from reports;"], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "read-only" in (refused.stderr + refused.stdout).lower()


def test_maintenance_compacts_once_a_table_has_many_files_and_keeps_what_it_reads(new_lake) -> None:
    with connect(new_lake()) as con:
        for n in range(4):  # four loads: four files per data table
            load_pages(con, "run-1", [make_page(f"M-{n}", url=f"http://m.example/{n}")], T0)
        before = con.execute("select count(*), sum(hash(r)) from reports as r").fetchone()
        assert lakes.maintain(con, compact_at=100) == []  # nothing expired, no table at the threshold
        done = lakes.maintain(con, compact_at=4)
        assert any(step.startswith("merged adjacent files") for step in done), done
        files = con.execute("select file_count from ducklake_table_info('lake') where table_name = 'reports'").fetchone()
        assert files == (1,)
        assert con.execute("select count(*), sum(hash(r)) from reports as r").fetchone() == before


# --- two nightly runs of different sources at once -------------------------------------------
def test_two_nightly_runs_of_different_sources_at_once_load_everything_once(new_lake, sample_sources, prefect_api,
                                                                            tmp_path) -> None:
    target, archive = new_lake(), tmp_path / "archive"
    halves = (["tiantai", "xianju"], ["lengshuitan", "shengzhou", "cixi"])
    runs = [subprocess.Popen([sys.executable, "-m", "flows.nightly", "--sources", str(sample_sources), "--warehouse",
                              target, "--archive", str(archive), *(f"--only={name}" for name in half)],
                             cwd=PROJECT_ROOT, env=os.environ | {"GOVETL_RUN_LOCK_TIMEOUT": "0"},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for half in halves]  # fmt: skip
    logs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], logs  # neither waited for the other's lock

    with connect(target, read_only=True) as con:
        assert con.execute("select count(*), count(distinct index_no) from reports").fetchone() == (45, 45)
        assert con.execute("select status, count(*) from runs group by all").fetchall() == [("completed", 2)]
        per_run = con.execute("select run_id, sum(new) from run_sources group by all order by 2").fetchall()
        assert [n for _, n in per_run] == [17, 28]  # each run loaded its own sources' pages
        for table, spec in TABLES.items():
            extra = con.execute(f"select count(*) - count(distinct ({', '.join(spec.key)})) from {table}").fetchone()
            assert extra == (0,), table
        fetched = con.execute("select count(*), count(distinct fetch_id) from fetch_log").fetchone()
    with connect(target) as writer:
        assert [c.check_name for c in run_checks(writer, "after") if c.status == "fail"] == []
    archived = subprocess.run([sys.executable, "-c", "import sqlite3, sys; print(sqlite3.connect(sys.argv[1])"
                               ".execute('select count(*) from fetches').fetchone()[0])", str(archive / "archive.sqlite")],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert fetched == (int(archived), int(archived))  # every archived fetch in fetch_log, once


def test_a_run_closes_as_abandoned_only_the_running_runs_that_share_a_source_with_it(new_lake) -> None:
    from warehouse.writer.runs import start_run

    with connect(new_lake()) as con:
        start_run(con, "a-1", parameters={"sources": ["alpha"]})
        start_run(con, "b-1", parameters={"sources": ["beta", "gamma"]})  # side by side on a lake
        start_run(con, "a-2", parameters={"sources": ["alpha"]})  # a-1 holds alpha no more: it died
        assert dict(con.execute("select run_id, status from runs").fetchall()) == {
            "a-1": "failed", "b-1": "running", "a-2": "running"}


def test_the_checks_verify_the_check_constraints_a_lake_cannot_hold(new_lake) -> None:
    with connect(new_lake()) as con:
        con.execute("insert into runs (run_id, started_at, status) values ('r-1', timestamp '2024-01-01', 'bogus')")
        results = {r.check_name: r for r in run_checks(con, "r-2")}
    assert results["check:runs.status"].status == "fail" and results["check:runs.status"].observed == 1
    assert results["check:dq_results.status"].status == "pass"


def test_two_lake_writers_spilling_at_once_each_spill_into_a_directory_of_their_own(new_lake) -> None:
    # One directory for both (every lake instance's, before): both crashed.
    assert_two_spill_at_once(new_lake(), read_only=False)


def test_a_new_spill_directory_comes_with_those_of_processes_gone_removed(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = tmp_path / f"govetl-duckdb-{gone.stdout.strip()}-0"  # a process killed while it spilled
    live = tmp_path / f"govetl-duckdb-{os.getppid()}-3"
    for directory in (left, live):
        directory.mkdir()
        (directory / "duckdb_temp_storage_S64K-0.tmp").write_bytes(b"\0" * 4096)
    fresh = spill_directory("ducklake:postgres:dbname=lake")
    assert fresh.parent == tmp_path and fresh.name.startswith(f"govetl-duckdb-{os.getpid()}-")
    assert not left.exists() and live.exists()
    # one per owner: the connections of a process to one file share DuckDB's database and its settings
    assert spill_directory("ducklake:postgres:dbname=lake") == fresh != spill_directory("/data/warehouse.duckdb")


def test_recording_the_fetch_log_over_large_reports_reads_their_bodies_only_for_a_state_that_changes(new_lake) -> None:
    # The fetch log re-decides the state (gone, superseded) of every report it is about; on a
    # lake an UPDATE of reports reads and rewrites whole rows, bodies included, so it is run
    # for the reports whose state changes only. Before, a 10,000-page lake ran out of memory
    # recording its first night's fetch log, and every later run did too.
    rng = random.Random(7)
    pages = [make_page(f"BIG-{i}", body="".join(rng.choices(_HANZI, k=150_000))) for i in range(40)]
    with connect(new_lake()) as con:
        load_pages(con, "run-1", pages, T0)  # 18 MB of bodies, under the writer's budget
        con.execute("set memory_limit = '20MB'")
        fetched = [{"fetch_id": i, "run_id": "run-2", "source": "tiantai", "url": page.url, "outcome": "fetched",
                    "status": 200, "fetched_at": T0 + timedelta(hours=1)} for i, page in enumerate(pages)]  # fmt: skip
        assert record_fetch_log(con, fetched) == 40
        assert con.execute("select count(*) from reports where gone_at is not null").fetchone() == (0,)
        con.execute(f"set memory_limit = '{settings.LAKE_MEMORY_LIMIT}'")  # an UPDATE reads a data file's bodies
        gone = dict(fetched[0], fetch_id=100, outcome="http_error", status=404, fetched_at=T0 + timedelta(days=1))
        assert record_fetch_log(con, [gone]) == 1
        assert con.execute("select index_no from reports where gone_at is not null").fetchall() == [("BIG-0",)]


_HANZI = [chr(code) for code in range(0x4E00, 0x9FA5)]
