"""tasks.crawl.archive.RawArchive: no row lost or duplicated, bodies kept once, crawl state right,
on both backends (SQLite and PostgreSQL: tests/archive_backends.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import tasks.crawl.archive.store as archive_store
from tasks.crawl.archive import (ArchiveProgress, ArchiveUnavailableError, PostgresArchive, RawArchive,
                                 archive_progress)  # fmt: skip
from tasks.crawl.archive.schema import SCHEMA_VERSION
from tasks.crawl.discover import ListingPage
from tasks.crawl.fetch import Fetcher
from tasks.crawl.ratelimit import HostRateLimiter
from tasks.records import FetchOutcome, FetchResult, ListingLink, Source
from tests.archive_backends import (archive_database, archive_location, count, env_for, query,  # noqa: F401 (fixtures)
                                    schema_version, set_schema_version, setting)
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
def archive(archive_location):
    with RawArchive(archive_location) as opened:
        yield opened


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
    assert count(archive.location, "blobs") == 0


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
    assert len(set(ids)) == 4 and count(archive.location, "fetches") == 4
    assert count(archive.location, "blobs") == 1
    assert {archive.body(fetch_id) for fetch_id in ids} == {b"same"}


def test_bodies_are_compressed(archive):
    body = b"<p>" + "重复的内容".encode() * 5000 + b"</p>"
    archive.record("run-1", "county", fetched("http://a/big", body=body))
    ((stored, size),) = query(archive.location, "SELECT length(body), size FROM blobs")
    assert size == len(body) and stored < len(body) / 10


def test_archive_survives_reopen_and_migrates_once(archive_location, tmp_path):
    where = tmp_path / "nested" / "archive.sqlite" if isinstance(archive_location, Path) else archive_location
    with RawArchive(where) as archive:
        fetch_id = archive.record("run-1", "county", fetched("http://a/1"))
    for _ in range(2):
        with RawArchive(where) as archive:
            assert archive.body(fetch_id) == b"<html>report</html>"
            assert archive.known_urls("county") == {"http://a/1"}
    assert schema_version(where) == SCHEMA_VERSION and count(where, "fetches") == 1
    if isinstance(where, Path):
        assert query(where, "PRAGMA journal_mode") == [("wal",)]
    else:
        assert count(where, "archive_version") == 1


def test_newer_schema_is_refused(archive_location):
    RawArchive(archive_location).close()
    set_schema_version(archive_location, 99)
    with pytest.raises(RuntimeError, match="newer"):
        RawArchive(archive_location)


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


def test_unloaded_survives_a_failed_load_and_reopen(archive_location):
    with RawArchive(archive_location) as archive:
        fetch_id = archive.record("run-1", "county", fetched("http://a/1"))
        # the warehouse load of run-1 fails here: nothing is marked
    with RawArchive(archive_location) as archive:
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


def test_what_a_stopping_run_kept_is_read_on_a_connection_of_its_own(archive):
    assert archive_progress(archive.location, "run-1") == ArchiveProgress(0, 0, 0, 0, 0)
    archive.record_listing_page("run-1", "county", ListingPage("http://a/list", [ListingLink("http://a/1"),
                                ListingLink("http://a/2"), ListingLink("http://a/3")], ["http://a/list2"]))  # fmt: skip
    loaded = archive.record("run-1", "county", fetched("http://a/1"))
    archive.record("run-1", "county", fetched("http://a/2", body=b"two"))
    archive.mark_loaded([loaded], "run-1")
    assert archive_progress(archive.location, "run-1") == ArchiveProgress(fetched_by_run=2, loaded_by_run=1,
                                                                          unloaded=1, pending_links=1,
                                                                          pending_listings=1)  # fmt: skip


def test_no_progress_is_read_from_an_archive_that_is_not_there(tmp_path):
    assert archive_progress(tmp_path / "none.sqlite", "run-1") is None
    assert archive_progress(PostgresArchive(f"host=127.0.0.1 port={_closed_port()} connect_timeout=2"), "r") is None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_log_is_per_run_and_ordered(archive):
    archive.record("run-1", "county", fetched("http://a/1"))
    ids = [archive.record("run-2", "county", failed(f"http://a/{n}")) for n in range(3)]
    assert [row["fetch_id"] for row in archive.fetch_log("run-2")] == ids


# --- concurrency and crashes -----------------------------------------------------------
def test_threads_lose_and_duplicate_nothing(archive):
    def work(worker: int) -> list[tuple[int, str]]:
        urls = [f"http://a/{worker}/{n}" for n in range(50)]
        return [(archive.record("run-1", "county", fetched(url, body=url.encode())), url) for url in urls]

    with ThreadPoolExecutor(max_workers=8) as pool:  # recorded in groups (_GroupCommit)
        given = dict(pair for batch in pool.map(work, range(8)) for pair in batch)
    assert len(given) == 400
    assert count(archive.location, "fetches") == count(archive.location, "pages") == count(archive.location, "blobs") == 400
    assert {row["fetch_id"]: row["url"] for row in archive.fetch_log("run-1")} == given  # each caller its own id


def test_a_batch_is_recorded_as_its_outcomes_one_by_one(archive_location, tmp_path):
    day2 = T0 + timedelta(days=1)
    outcomes = [fetched("http://a/1", etag='"v1"'), failed("http://a/2"), fetched("http://a/3", body=b"same"),
                fetched("http://a/4", body=b"same"), not_modified("http://a/1", day2, etag='"v2"'),
                FetchResult("http://a/5", FetchOutcome.HTTP_ERROR, status=404, reason="HTTP 404", fetched_at=T0)]
    other = tmp_path / "one-by-one.sqlite"
    with RawArchive(archive_location) as batched, RawArchive(other) as single:
        for archive in (batched, single):
            archive.record_listing_page("run-1", "county", ListingPage("http://a/list", [
                ListingLink(f"http://a/{n}", f"t{n}", None, "http://a/list") for n in range(1, 6)], [], None), at=T0)
        ids = batched.record_many("run-1", "county", outcomes)
        single_ids = [single.record("run-1", "county", outcome) for outcome in outcomes]
        assert len(ids) == len(set(ids)) == 6 and ids == sorted(ids) and single_ids == sorted(single_ids)
        assert batched.frontier() == single.frontier()
        urls = [f"http://a/{n}" for n in range(1, 6)]
        assert batched.page_states(urls) == single.page_states(urls)
        assert [_log(row) for row in batched.fetch_log("run-1")] == [_log(row) for row in single.fetch_log("run-1")]
    assert count(archive_location, "blobs") == 2


def test_a_nul_a_server_sent_is_recorded_on_either_backend(archive):
    archive.record_listing_page("run-1", "county", ListingPage("http://a/list", [ListingLink("http://a/1", "标题\x00")]))
    archive.record("run-1", "county", fetched("http://a/1", etag='"v\x001"', reason=None))
    state = archive.page_states(["http://a/1"])["http://a/1"]
    assert state.etag in ('"v\x001"', '"v\ufffd1"') and archive.frontier()[1].state == "fetched"


def _group_commit_with_one_bad_outcome(error: Exception) -> tuple[dict[str, object], list[list[str]]]:
    """Four callers whose outcomes queue behind a first group; one of them makes any
    transaction holding it fail with `error`. What each caller got, and the groups written."""
    first_group_writing, release = threading.Event(), threading.Event()
    groups: list[list[str]] = []

    def write(recordings):
        urls = [r.fetch["url"] for r in recordings]
        groups.append(urls)
        if urls == ["http://a/first"]:
            first_group_writing.set()
            release.wait(10)
        if "http://a/bad" in urls:
            raise error
        return [n for n, _ in enumerate(urls, 1000)]

    commit = archive_store._GroupCommit(write)
    prepare = lambda url: archive_store._prepare("run-1", "s", fetched(url), None)  # noqa: E731
    got: dict[str, object] = {}

    def call(url: str) -> None:
        try:
            got[url] = commit.submit(prepare(url))
        except Exception as exc:
            got[url] = exc

    first = threading.Thread(target=call, args=("http://a/first",))
    first.start()
    assert first_group_writing.wait(10)
    others = [threading.Thread(target=call, args=(url,)) for url in ("http://a/1", "http://a/bad", "http://a/2")]
    for thread in others:
        thread.start()
    while len(commit._queue) < 3:  # all three wait for the next group
        time.sleep(0.001)
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    return got, groups


def test_a_group_that_fails_on_one_outcome_fails_only_its_caller():
    got, groups = _group_commit_with_one_bad_outcome(ValueError("NOT NULL constraint failed"))
    # the three threads queue in whatever order they were scheduled: compare as sets
    assert groups[0] == ["http://a/first"] and sorted(groups[1]) == ["http://a/1", "http://a/2", "http://a/bad"]
    assert [[url] for url in groups[1]] == groups[2:]  # then each alone, in the same order
    assert isinstance(got.pop("http://a/bad"), ValueError) and got == {"http://a/first": 1000, "http://a/1": 1000,
                                                                       "http://a/2": 1000}  # fmt: skip


def test_an_archive_that_cannot_be_written_fails_the_whole_group_at_once():
    down = ArchiveUnavailableError("postgres:host=db", "connection refused")
    got, groups = _group_commit_with_one_bad_outcome(down)
    assert len(groups) == 2 and all(got[url] is down for url in ("http://a/1", "http://a/bad", "http://a/2"))


def _log(row: dict) -> dict:
    return {key: value for key, value in row.items() if key != "fetch_id"}


CRASHING_WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from tasks.crawl.archive import RawArchive
    from tasks.records import FetchOutcome, FetchResult
    archive = RawArchive(sys.argv[1])  # a file, or postgres:<dsn> (GOVETL_ARCHIVE_SCHEMA)
    n = 0
    while True:
        body = (b"page %d " % n) * 200
        archive.record("run-1", "county", FetchResult(url=f"http://a/{n % 50}", outcome=FetchOutcome.FETCHED,
                       status=200, body=body, fetched_at=datetime.now(UTC)))
        n += 1
        if n == 20:
            print("writing", flush=True)
""")


def test_kill_9_mid_write_leaves_a_consistent_archive(archive_location):
    writer = subprocess.Popen([sys.executable, "-c", CRASHING_WRITER, setting(archive_location)], cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, text=True, env=os.environ | env_for(archive_location))  # fmt: skip
    try:
        assert writer.stdout.readline().strip() == "writing"
        time.sleep(0.3)
    finally:
        writer.kill()  # SIGKILL: no cleanup, no final commit
        writer.wait()
    if isinstance(archive_location, Path):
        assert query(archive_location, "PRAGMA integrity_check") == [("ok",)]
    orphans = "SELECT count(*) FROM fetches WHERE body_sha256 NOT IN (SELECT sha256 FROM blobs)"
    assert query(archive_location, orphans) == [(0,)]
    assert query(archive_location, "SELECT count(DISTINCT url) FROM fetches") == [(count(archive_location, "pages"),)]
    with RawArchive(archive_location) as archive:
        rows = archive.fetch_log("run-1")
        assert len(rows) >= 20
        assert archive.body(rows[-1]["fetch_id"]).startswith(b"page ")
        archive.record("run-2", "county", fetched("http://a/after-crash"))  # still writable


# --- end to end: conditional GET through the fetcher into the archive ------------------
def test_conditional_get_updates_last_checked_at(archive_location):
    with FaultServer() as server, RawArchive(archive_location) as archive:
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
    with RawArchive(archive_location) as reopened:
        after = reopened.page_states([url])[url]
        assert after.last_checked_at == second.fetched_at > state.last_checked_at
        assert after.last_fetched_at == first.fetched_at and after.last_sha256 == state.last_sha256
        assert [row["outcome"] for row in reopened.fetch_log("run-2")] == ["not_modified"]
        (latest,) = reopened.latest_fetched()
        assert reopened.body(latest.fetch_id) == PAGE_HTML
