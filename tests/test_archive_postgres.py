"""The raw archive on PostgreSQL, where it differs from the SQLite file: many processes
writing one archive at once, many threads on a bounded pool, a server that is down or
refuses, `check` and `set-aside` of a schema; and the nightly flow with its archive there.

Everything else the archive does is tested on both backends (test_archive.py,
test_frontier.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psycopg
import pytest

from sample_site.content import load_sample_sites
from tasks import settings
from tasks.crawl.archive import ArchiveDamagedError, ArchiveUnavailableError, PostgresArchive, RawArchive
from tasks.records import FetchOutcome, FetchResult
from tests.postgres import LocalPostgres
from tests.archive_backends import archive_database, count, env_for, postgres_location, query, setting  # noqa: F401
from warehouse.schema.tables import data_tables

pytestmark = pytest.mark.timeout(120)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def where(request) -> PostgresArchive:
    return postgres_location(request)


def page(url: str, body: bytes) -> FetchResult:
    return FetchResult(url=url, outcome=FetchOutcome.FETCHED, final_url=url, status=200, body=body,
                       content_type="text/html", fetched_at=datetime.now(UTC), attempts=1)  # fmt: skip


# --- many writers -------------------------------------------------------------------------
# One run of one source: its listing, then its pages from four threads (two recording page
# by page, two in batches of five), some of them pages the other run fetches too and
# bodies the other run fetches too. Prints the fetch ids it was given.
WRITER = textwrap.dedent("""
    import json, sys
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime
    from tasks.crawl.archive import RawArchive
    from tasks.crawl.discover import ListingPage
    from tasks.records import FetchOutcome, FetchResult, ListingLink

    setting, source, pages = sys.argv[1], sys.argv[2], int(sys.argv[3])
    urls = [f"http://{source}/{n}" for n in range(pages)] + [f"http://shared/{n}" for n in range(20)]
    body = lambda url: (b"shared " + url.encode()) if "shared" in url else b"body %d" % (int(url.rsplit("/", 1)[1]) % 30)
    page = lambda url: FetchResult(url=url, outcome=FetchOutcome.FETCHED, final_url=url, status=200, body=body(url),
                                   fetched_at=datetime.now(UTC), attempts=1)
    with RawArchive(setting) as archive:
        print("ready", flush=True)
        sys.stdin.readline()  # both runs start together
        archive.record_listing_page("run-" + source, source, ListingPage(f"http://{source}/list",
                                                                         [ListingLink(url) for url in urls]))
        def work(part):
            mine = urls[part::4]
            if part < 2:
                return [archive.record("run-" + source, source, page(url)) for url in mine]
            return [fid for start in range(0, len(mine), 5)
                    for fid in archive.record_many("run-" + source, source, [page(url) for url in mine[start:start + 5]])]
        with ThreadPoolExecutor(4) as pool:
            ids = [fid for part in pool.map(work, range(4)) for fid in part]
    print(json.dumps(ids), flush=True)
""")


def test_two_runs_writing_one_archive_at_once_lose_and_duplicate_nothing(where):
    pages = 150
    RawArchive(where).close()  # the schema exists before both start (each would create it once anyway)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, setting(where), source, str(pages)], cwd=PROJECT_ROOT,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env=os.environ | env_for(where)) for source in ("east", "west")]  # fmt: skip
    seen_by_reader: list[int] = []
    done = threading.Event()

    def read_as_the_warehouse_does() -> None:  # fetch_log_after(its newest row), over and over
        with RawArchive(where) as archive:
            while True:
                last_round = done.is_set()
                rows = archive.fetch_log_after(seen_by_reader[-1] if seen_by_reader else None)
                seen_by_reader.extend(row["fetch_id"] for row in rows)
                if last_round:
                    return

    try:
        for writer in writers:
            assert writer.stdout.readline().strip() == "ready"
        reader = threading.Thread(target=read_as_the_warehouse_does)
        reader.start()
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        given = [json.loads(writer.communicate(timeout=90)[0].strip().splitlines()[-1]) for writer in writers]
    finally:
        done.set()
        for writer in writers:
            writer.kill()
    reader.join(timeout=30)
    assert all(writer.returncode == 0 for writer in writers)

    per_run = pages + 20
    stored = [row[0] for row in query(where, "SELECT fetch_id FROM fetches ORDER BY fetch_id")]
    assert len(given[0]) == len(given[1]) == per_run and not set(given[0]) & set(given[1])
    assert min(given[0]) < max(given[1]) and min(given[1]) < max(given[0])  # they did write at the same time
    assert sorted(given[0] + given[1]) == stored  # nothing lost, nothing twice
    assert seen_by_reader == stored  # a reader following the newest id missed no row written before it
    assert count(where, "blobs") == 30 + 20  # bodies stored once across the two runs
    assert query(where, "SELECT count(*) FROM fetches WHERE body_sha256 NOT IN (SELECT sha256 FROM blobs)") == [(0,)]
    assert count(where, "pages") == 2 * pages + 20
    newest_body_mismatch = """SELECT count(*) FROM pages p WHERE p.last_sha256 <> (SELECT f.body_sha256 FROM fetches f
                              WHERE f.url = p.url ORDER BY f.fetch_id DESC LIMIT 1)"""  # fmt: skip
    assert query(where, newest_body_mismatch) == [(0,)]
    frontier = query(where, "SELECT kind, state, count(*), count(DISTINCT url) FROM frontier GROUP BY kind, state")
    assert sorted(frontier) == [("article", "fetched", 2 * pages + 20, 2 * pages + 20), ("listing", "read", 2, 2)]


def test_many_threads_share_a_bounded_pool(where, monkeypatch):
    monkeypatch.setattr(settings, "ARCHIVE_PG_CONNECTIONS", 3)
    dbname = psycopg.conninfo.conninfo_to_dict(where.dsn)["dbname"]
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        with psycopg.connect(where.dsn, autocommit=True) as conn:
            while not stop.is_set():
                (n,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                                    " AND application_name = 'govetl-archive'", [dbname]).fetchone()  # fmt: skip
                peak = max(peak, n)
                time.sleep(0.005)

    with RawArchive(where) as archive:
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with ThreadPoolExecutor(max_workers=16) as pool:
                ids = list(pool.map(lambda n: archive.record("run-1", "s", page(f"http://a/{n}", b"%d" % n)), range(400)))
        finally:
            stop.set()
            watcher.join()
    assert len(set(ids)) == 400 and count(where, "fetches") == 400
    assert 1 <= peak <= 3


# --- failures an operator reads -----------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_postgres_that_is_down_is_one_line_naming_it_without_its_password(tmp_path):
    down = f"postgres:host=127.0.0.1 port={closed_port()} user=govetl password=s3cret dbname=archive"
    with pytest.raises(ArchiveUnavailableError) as caught:
        RawArchive(down)
    message = str(caught.value)
    assert message.startswith(f"the raw archive postgres:host=127.0.0.1 port={down.split('port=')[1].split()[0]} ")
    assert "s3cret" not in message and "\n" not in message and "refused" in message

    checked = subprocess.run([sys.executable, "-m", "tasks.crawl.archive", "check", down], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert checked.returncode == 1 and checked.stdout == ""
    assert checked.stderr.count("\n") == 1 and "s3cret" not in checked.stderr and "Traceback" not in checked.stderr

    run = subprocess.run([sys.executable, "-m", "flows.nightly", "--sources", str(PROJECT_ROOT / "sources.yaml"),
                          "--warehouse", str(tmp_path / "w.duckdb"), "--archive", down], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=90)  # fmt: skip
    assert run.returncode == 1 and "Traceback" not in run.stderr and "s3cret" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("nightly run failed: the raw archive postgres:host=127.0.0.1")
    assert not (tmp_path / "w.duckdb").exists() and not (tmp_path / "archive").exists()


def test_a_server_that_goes_away_mid_run_fails_the_write_and_is_used_again_when_back(postgres):
    # A server of its own, to stop (the session's serves the other tests); outside pytest's
    # private temporary root, which the `postgres` user cannot enter.
    with tempfile.TemporaryDirectory(prefix="govetl-test-pg-") as root, LocalPostgres(Path(root)) as server:
        with RawArchive(PostgresArchive(server.create_database("archive"))) as archive:
            kept = archive.record("run-1", "s", page("http://a/1", b"kept"))
            together = threading.Barrier(3)

            def hold_a_connection(_: int) -> None:
                with archive._db.read():
                    together.wait(10)

            with ThreadPoolExecutor(3) as pool:
                list(pool.map(hold_a_connection, range(3)))
            assert len(archive._db._pool._idle) == 3  # idle in the pool when the server goes
            server.stop()
            with pytest.raises(ArchiveUnavailableError) as caught:
                archive.record("run-1", "s", page("http://a/2", b"lost"))
            assert "\n" not in str(caught.value) and "user=govetl dbname=archive" in str(caught.value)
            server.start()
            archive.record("run-1", "s", page("http://a/3", b"after"))
            assert [row["fetch_id"] for row in archive.fetch_log("run-1")][0] == kept
            assert [row["url"] for row in archive.fetch_log("run-1")] == ["http://a/1", "http://a/3"]


def test_a_postgres_that_refuses_the_database_says_so(where):
    missing = PostgresArchive(where.dsn.replace("dbname=archive_tests", "dbname=no_such_db"), where.schema)
    with pytest.raises(ArchiveUnavailableError, match='database "no_such_db" does not exist'):
        RawArchive(missing)


def archive_command(*args: str, where: PostgresArchive) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tasks.crawl.archive", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60, env=os.environ | env_for(where))  # fmt: skip


def test_check_and_set_aside_act_on_the_schema(where):
    assert archive_command("check", setting(where), where=where).stderr.startswith("no archive at postgres:")
    with RawArchive(where) as archive:
        fetch_id = archive.record("run-1", "s", page("http://a/1", b"kept"))
    checked = archive_command("check", setting(where), where=where)
    assert checked.returncode == 0 and checked.stdout.strip().endswith(": ok, schema version 3")

    query(where, "DROP TABLE blobs CASCADE")  # a table lost: damage PostgreSQL itself cannot see
    with pytest.raises(ArchiveDamagedError) as caught:
        RawArchive(where)
    assert "without table(s) blobs" in str(caught.value)
    assert f"`GOVETL_ARCHIVE_SCHEMA={where.schema} python -m tasks.crawl.archive set-aside 'postgres:{where.shown_dsn}'`" \
        in str(caught.value)

    moved = archive_command("set-aside", setting(where), where=where)
    assert moved.returncode == 0 and f"set aside as {where.schema}_damaged_" in moved.stdout
    (renamed,) = query(where, "SELECT nspname FROM pg_namespace WHERE nspname LIKE ?", (f"{where.schema}_damaged_%",))
    with RawArchive(where) as fresh:  # the next run starts a new archive in the schema
        assert fresh.fetch_log("run-1") == []
    kept = PostgresArchive(where.dsn, renamed[0])
    assert query(kept, "SELECT fetch_id FROM fetches") == [(fetch_id,)]  # the old one is there until dropped


# --- the flows ----------------------------------------------------------------------------
def checksums(warehouse: Path) -> dict[str, tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {t: con.execute(f"select count(*), sum(hash(t)) from {t} as t").fetchone() for t in data_tables()}


@pytest.mark.slow
def test_nightly_with_its_archive_on_postgres_loads_once_and_rerun_writes_nothing(prefect_api, sample_sources,
                                                                                  postgres, tmp_path):  # fmt: skip
    from flows.nightly import nightly
    from flows.reprocess import reprocess

    archive = "postgres:" + postgres.create_database("archive_flow")
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    run = {"sources_file": str(sample_sources), "warehouse_path": str(warehouse), "archive": archive}
    listed = sum(len(site.articles) for site in load_sample_sites())

    first = {row["source"]: row for row in nightly(**run)}
    assert first["TOTAL"]["new"] == first["TOTAL"]["fetched"] == listed and first["TOTAL"]["failed"] == 0
    assert not (warehouse.parent / "archive").exists()  # nothing went to a SQLite file
    where = PostgresArchive.parse(archive)
    assert query(where, "SELECT count(*) FROM fetches WHERE outcome = 'fetched' AND loaded_run_id IS NOT NULL") == [
        (listed,)]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from fetch_log").fetchone()[0] == count(where, "fetches")

    before = checksums(warehouse)
    second = {row["source"]: row for row in nightly(**run, revalidate_after_hours=0)}
    assert second["TOTAL"]["new"] == second["TOTAL"]["changed"] == 0
    assert second["TOTAL"]["not_modified"] == listed and checksums(warehouse) == before

    again = {row["source"]: row for row in reprocess(sources_file=run["sources_file"], warehouse_path=str(warehouse),
                                                     archive=archive)}  # fmt: skip
    assert again["TOTAL"]["changed"] == again["TOTAL"]["new"] == 0 and checksums(warehouse) == before


def test_the_fetch_ids_are_write_times(where):
    with RawArchive(where) as archive:
        before = time.time_ns() // 1000
        ids = archive.record_many("run-1", "s", [page(f"http://a/{n}", b"x") for n in range(3)])
        after = time.time_ns() // 1000
    assert before <= ids[0] < ids[1] < ids[2] <= after + 2
    assert hashlib.sha256(b"x").hexdigest() == query(where, "SELECT sha256 FROM blobs")[0][0]
