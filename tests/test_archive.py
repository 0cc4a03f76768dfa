"""tasks.crawl.archive.RawArchive: no row lost or duplicated, bodies kept once, crawl state right."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import tasks.crawl.archive as archive_module
from tasks.crawl.archive import RawArchive
from tasks.crawl.fetch import Fetcher
from tasks.crawl.ratelimit import HostRateLimiter
from tasks.records import FetchOutcome, FetchResult, Source
from tests.faultserver import PAGE_HTML, PDF_BODY, FaultServer

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def fetched(url: str, body: bytes = b"<html>report</html>", at: datetime = T0, **fields) -> FetchResult:
    return FetchResult(url=url, outcome=FetchOutcome.FETCHED, final_url=url, status=200, body=body,
                       content_type="text/html", fetched_at=at, attempts=1, **fields)  # fmt: skip


def failed(url: str, outcome: FetchOutcome = FetchOutcome.HTTP_ERROR, at: datetime = T0) -> FetchResult:
    return FetchResult(url=url, outcome=outcome, status=503, reason="HTTP 503; gave up after 4 attempts",
                       fetched_at=at, attempts=4, retry_reasons={"503": 3})  # fmt: skip


def not_modified(url: str, at: datetime, etag: str | None = None) -> FetchResult:
    return FetchResult(url=url, outcome=FetchOutcome.NOT_MODIFIED, status=304, fetched_at=at, etag=etag)


@pytest.fixture
def archive(tmp_path: Path):
    with RawArchive(tmp_path / "archive.sqlite") as opened:
        yield opened


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# --- recording -------------------------------------------------------------------------
def test_fetched_page_is_logged_and_its_body_kept(archive):
    result = fetched("http://a/1", etag='"e1"', last_modified="Wed, 01 May 2024 00:00:00 GMT",
                     retry_reasons={"503": 1}, headers={"Content-Type": "text/html"})  # fmt: skip
    fetch_id = archive.record("run-1", "county", result)
    assert archive.body(fetch_id) == b"<html>report</html>"
    (row,) = archive.fetch_log("run-1")
    assert row["fetch_id"] == fetch_id and row["outcome"] == "fetched" and row["source"] == "county"
    assert row["retry_reasons"] == {"503": 1} and row["headers"] == {"Content-Type": "text/html"}
    assert row["fetched_at"] == T0 and row["size"] == len(result.body) and row["attempts"] == 1
    assert row["sha256"] == row["body_sha256"] and row["loaded_run_id"] is None
    state = archive.page_states(["http://a/1"])["http://a/1"]
    assert state.first_seen_at == state.last_checked_at == state.last_fetched_at == T0
    assert (state.etag, state.last_outcome) == ('"e1"', FetchOutcome.FETCHED)


def test_failures_are_logged_without_body(archive):
    fetch_id = archive.record("run-1", "county", failed("http://a/down"))
    with pytest.raises(KeyError):
        archive.body(fetch_id)
    (row,) = archive.fetch_log("run-1")
    assert row["reason"].startswith("HTTP 503") and row["attempts"] == 4 and row["body_sha256"] is None
    state = archive.page_states(["http://a/down"])["http://a/down"]
    assert state.last_outcome is FetchOutcome.HTTP_ERROR
    assert state.last_checked_at is None and state.last_fetched_at is None
    assert archive.known_urls("county") == set()
    assert count(archive.path, "blobs") == 0


def test_non_html_body_is_kept_and_known(archive):
    pdf = FetchResult(url="http://a/r.pdf", outcome=FetchOutcome.NON_HTML, status=200, body=PDF_BODY,
                      content_type="application/pdf", fetched_at=T0, reason="body is a PDF document")  # fmt: skip
    fetch_id = archive.record("run-1", "county", pdf)
    assert archive.body(fetch_id) == PDF_BODY
    assert archive.known_urls("county") == {"http://a/r.pdf"}
    assert archive.unloaded() == []  # only HTML goes to the warehouse


def test_identical_bodies_are_stored_once(archive):
    ids = [archive.record("run-1", "county", fetched(f"http://a/{n}", body=b"same")) for n in range(3)]
    ids.append(archive.record("run-2", "county", fetched("http://a/0", body=b"same")))
    assert len(set(ids)) == 4 and count(archive.path, "fetches") == 4
    assert count(archive.path, "blobs") == 1
    assert {archive.body(fetch_id) for fetch_id in ids} == {b"same"}


def test_bodies_are_compressed(archive):
    body = b"<p>" + "重复的内容".encode() * 5000 + b"</p>"
    archive.record("run-1", "county", fetched("http://a/big", body=body))
    with sqlite3.connect(archive.path) as conn:
        stored = conn.execute("SELECT length(body), size FROM blobs").fetchone()
    assert stored[1] == len(body) and stored[0] < len(body) / 10


def test_archive_survives_reopen_and_migrates_once(tmp_path):
    path = tmp_path / "nested" / "archive.sqlite"
    with RawArchive(path) as archive:
        fetch_id = archive.record("run-1", "county", fetched("http://a/1"))
    for _ in range(2):
        with RawArchive(path) as archive:
            assert archive.body(fetch_id) == b"<html>report</html>"
            assert archive.known_urls("county") == {"http://a/1"}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(archive_module._MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert count(path, "fetches") == 1


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "archive.sqlite"
    RawArchive(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="newer"):
        RawArchive(path)


# --- crawl state -----------------------------------------------------------------------
def test_not_modified_moves_last_checked_only(archive):
    archive.record("run-1", "county", fetched("http://a/1", etag='"v1"', last_modified="Mon, 01 Jan 2024"))
    later = T0 + timedelta(days=8)
    archive.record("run-2", "county", not_modified("http://a/1", later))
    state = archive.page_states(["http://a/1"])["http://a/1"]
    assert state.last_checked_at == later and state.last_fetched_at == T0
    assert state.etag == '"v1"' and state.last_modified == "Mon, 01 Jan 2024"
    assert state.last_outcome is FetchOutcome.NOT_MODIFIED and state.last_sha256


def test_failure_after_success_keeps_validators_and_check_time(archive):
    archive.record("run-1", "county", fetched("http://a/1", etag='"v1"'))
    archive.record("run-2", "county", failed("http://a/1", at=T0 + timedelta(days=1)))
    state = archive.page_states(["http://a/1"])["http://a/1"]
    assert state.etag == '"v1"' and state.last_checked_at == T0
    assert state.last_attempt_at == T0 + timedelta(days=1) and state.last_outcome is FetchOutcome.HTTP_ERROR
    assert archive.known_urls("county") == {"http://a/1"}


def test_new_body_replaces_validators(archive):
    archive.record("run-1", "county", fetched("http://a/1", etag='"v1"'))
    archive.record("run-2", "county", fetched("http://a/1", body=b"v2", at=T0 + timedelta(days=1)))
    assert archive.page_states(["http://a/1"])["http://a/1"].etag is None


def test_due_for_revalidation_lists_stale_known_pages(archive):
    archive.record("run-1", "county", fetched("http://a/old"))
    archive.record("run-1", "county", fetched("http://a/fresh", at=T0 + timedelta(days=6)))
    archive.record("run-1", "county", failed("http://a/never-fetched"))
    archive.record("run-1", "other", fetched("http://b/old"))
    now = T0 + timedelta(days=8)
    due = archive.due_for_revalidation("county", timedelta(days=7), now=now)
    assert [state.url for state in due] == ["http://a/old"]
    archive.record("run-2", "county", not_modified("http://a/old", now))
    assert archive.due_for_revalidation("county", timedelta(days=7), now=now) == []


def test_page_states_handles_many_urls(archive):
    urls = [f"http://a/{n}" for n in range(1200)]
    for url in urls[::2]:
        archive.record("run-1", "county", fetched(url, body=url.encode()))
    states = archive.page_states(urls + urls[:10])
    assert set(states) == set(urls[::2])


# --- load hand-off ---------------------------------------------------------------------
def test_unloaded_and_mark_loaded_round_trip(archive):
    ids = [archive.record("run-1", "county", fetched(f"http://a/{n}", body=bytes([n]))) for n in range(3)]
    archive.record("run-1", "county", failed("http://a/down"))
    assert [f.fetch_id for f in archive.unloaded()] == ids
    assert archive.mark_loaded(ids[:2], "run-1") == 2
    assert [f.fetch_id for f in archive.unloaded()] == ids[2:]
    assert archive.mark_loaded(ids, "run-2") == 1  # already-loaded rows keep their run
    assert archive.unloaded() == []
    assert {row["loaded_run_id"] for row in archive.fetch_log("run-1") if row["outcome"] == "fetched"} == {
        "run-1", "run-2"
    }


def test_unloaded_survives_a_failed_load_and_reopen(tmp_path):
    path = tmp_path / "archive.sqlite"
    with RawArchive(path) as archive:
        fetch_id = archive.record("run-1", "county", fetched("http://a/1"))
        # the warehouse load of run-1 fails here: nothing is marked
    with RawArchive(path) as archive:
        (pending,) = archive.unloaded("county")
        assert pending.fetch_id == fetch_id and archive.body(pending.fetch_id) == b"<html>report</html>"
        archive.mark_loaded([pending.fetch_id], "run-2")
        assert archive.unloaded("county") == []


def test_unloaded_skips_fetches_superseded_by_a_newer_one(archive):
    old = archive.record("run-1", "county", fetched("http://a/1", body=b"v1"))
    new = archive.record("run-2", "county", fetched("http://a/1", body=b"v2", at=T0 + timedelta(days=1)))
    assert [f.fetch_id for f in archive.unloaded()] == [new]
    archive.mark_loaded([new], "run-2")
    assert archive.unloaded() == []  # the older body must never overwrite the newer one
    assert old < new


def test_unloaded_filters_by_source(archive):
    archive.record("run-1", "county", fetched("http://a/1"))
    other = archive.record("run-1", "other", fetched("http://b/1"))
    assert [f.fetch_id for f in archive.unloaded("other")] == [other]


# --- reprocessing ----------------------------------------------------------------------
def test_latest_fetched_returns_one_row_per_url(archive):
    for day in range(3):
        for n in range(4):
            archive.record(f"run-{day}", "county", fetched(f"http://a/{n}", body=f"{n}-{day}".encode(),
                                                           at=T0 + timedelta(days=day)))  # fmt: skip
    archive.record("run-3", "county", not_modified("http://a/0", T0 + timedelta(days=3)))
    archive.record("run-3", "county", failed("http://a/1", at=T0 + timedelta(days=3)))
    archive.record("run-3", "other", fetched("http://b/0"))
    latest = list(archive.latest_fetched("county"))
    assert sorted(f.url for f in latest) == [f"http://a/{n}" for n in range(4)]
    assert {archive.body(f.fetch_id) for f in latest} == {f"{n}-2".encode() for n in range(4)}
    assert all(f.fetched_at == T0 + timedelta(days=2) for f in latest)
    assert len(list(archive.latest_fetched())) == 5


def test_latest_fetched_streams_while_the_archive_is_written(archive):
    for n in range(5):
        archive.record("run-1", "county", fetched(f"http://a/{n}", body=bytes([n])))
    seen = []
    for item in archive.latest_fetched("county"):  # a reprocess loop that also writes
        seen.append(item.url)
        archive.record("run-2", "county", not_modified(item.url, T0 + timedelta(days=1)))
    assert len(seen) == 5


def test_fetch_log_is_per_run_and_ordered(archive):
    archive.record("run-1", "county", fetched("http://a/1"))
    ids = [archive.record("run-2", "county", failed(f"http://a/{n}")) for n in range(3)]
    assert [row["fetch_id"] for row in archive.fetch_log("run-2")] == ids


# --- concurrency and crashes -----------------------------------------------------------
def test_threads_lose_and_duplicate_nothing(archive):
    def work(worker: int) -> list[int]:
        return [archive.record("run-1", "county", fetched(f"http://a/{worker}/{n}", body=f"{worker}/{n}".encode()))
                for n in range(50)]  # fmt: skip

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = [fetch_id for batch in pool.map(work, range(8)) for fetch_id in batch]
    assert len(ids) == len(set(ids)) == 400
    assert count(archive.path, "fetches") == count(archive.path, "pages") == count(archive.path, "blobs") == 400


CRASHING_WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from tasks.crawl.archive import RawArchive
    from tasks.records import FetchOutcome, FetchResult
    archive = RawArchive(sys.argv[1])
    n = 0
    while True:
        body = (b"page %d " % n) * 200
        archive.record("run-1", "county", FetchResult(url=f"http://a/{n % 50}", outcome=FetchOutcome.FETCHED,
                       status=200, body=body, fetched_at=datetime.now(UTC)))
        n += 1
        if n == 20:
            print("writing", flush=True)
""")


def test_kill_9_mid_write_leaves_a_consistent_archive(tmp_path):
    path = tmp_path / "archive.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", CRASHING_WRITER, str(path)], cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert writer.stdout.readline().strip() == "writing"
        time.sleep(0.3)
    finally:
        writer.kill()  # SIGKILL: no cleanup, no final commit
        writer.wait()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        orphans = conn.execute("SELECT count(*) FROM fetches WHERE body_sha256 NOT IN (SELECT sha256 FROM blobs)")
        assert orphans.fetchone()[0] == 0
        assert conn.execute("SELECT count(DISTINCT url) FROM fetches").fetchone()[0] == count(path, "pages")
    with RawArchive(path) as archive:
        rows = archive.fetch_log("run-1")
        assert len(rows) >= 20
        assert archive.body(rows[-1]["fetch_id"]).startswith(b"page ")
        archive.record("run-2", "county", fetched("http://a/after-crash"))  # still writable


# --- end to end: conditional GET through the fetcher into the archive ------------------
def test_conditional_get_updates_last_checked_at(tmp_path):
    with FaultServer() as server, RawArchive(tmp_path / "archive.sqlite") as archive:
        source = Source(name="county", region="test", listing_urls=(server.url("/page"),),
                        allowed_hosts=("127.0.0.1",), rate_limit_per_second=0)  # fmt: skip
        url = server.url("/conditional")
        with Fetcher(source, rate_limiter=HostRateLimiter(), retry_times=0) as fetcher:
            first = fetcher.fetch(url)
            archive.record("run-1", source.name, first)
            state = archive.page_states([url])[url]
            second = fetcher.fetch(url, etag=state.etag, last_modified=state.last_modified)
            archive.record("run-2", source.name, second)
    assert first.outcome is FetchOutcome.FETCHED and second.outcome is FetchOutcome.NOT_MODIFIED
    with RawArchive(tmp_path / "archive.sqlite") as reopened:
        after = reopened.page_states([url])[url]
        assert after.last_checked_at == second.fetched_at > state.last_checked_at
        assert after.last_fetched_at == first.fetched_at and after.last_sha256 == state.last_sha256
        assert [row["outcome"] for row in reopened.fetch_log("run-2")] == ["not_modified"]
        (latest,) = reopened.latest_fetched()
        assert reopened.body(latest.fetch_id) == PAGE_HTML
