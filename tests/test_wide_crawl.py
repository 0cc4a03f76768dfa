"""A crawl as wide as the country, small: many hosts at once, each polite, within fixed bounds.

The flow test serves 50 loopback hosts (bench/hosts.py, a process of its own that logs
every request on the machine's monotonic clock) and runs the real nightly flow over one
source per host, with the crawl's bounds set small. What it asserts is structure, never a
duration: hosts crawled together (most of them mid-crawl at one instant, the whole crawl a
fraction of the hosts one after another), no host ever asked twice within its interval
(the server's clock), robots.txt once per host, threads and connections under the bounds
and far under the number of hosts. The scheduler, the rate limiter's hold and the shared
robots rules are tested alone below it, and the summary at width after that.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
import yaml

from bench.hosts import HostLog, ManyHosts
from flows.nightly import nightly
from tasks.crawl.fetch import ConnectionPools, Fetcher
from tasks.crawl.ratelimit import HostRateLimiter
from tasks.crawl.robots import RobotsCache
from tasks.crawl.runlock import RunInterrupted
from tasks.crawl.scheduler import HostScheduler
from tasks.records import FetchOutcome, Source
from tasks.summary import RunSummary, SourceCounts, artifact_rows, format_summary, summary_markdown
from tests.faultserver import FaultServer

HOSTS, PAGES, RATE = 50, 3, 5.0  # each host: robots.txt, its listing page(s), 3 reports: ~1 s at 5/s
BOUNDS = {"CRAWL_WORKERS": 4, "CRAWL_KEEP_ALIVE_HOSTS": 8, "CRAWL_TASKS": 3}


class ThreadPeak:
    """The most threads this process had at once while the block ran (sampled every 2 ms)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, threading.active_count() - 1)  # less the sampler itself
            time.sleep(0.002)

    def __enter__(self) -> ThreadPeak:
        self._sampler.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._sampler.join()


@pytest.fixture(scope="module")
def wide_run(prefect_api, tmp_path_factory) -> tuple[dict[str, dict], HostLog, int, int]:
    """One wide nightly run: (its rows by source, the server's log, threads before, peak threads)."""
    tmp = tmp_path_factory.mktemp("wide")
    patch = pytest.MonkeyPatch()
    for name, value in BOUNDS.items():
        patch.setattr(f"tasks.settings.{name}", value)
    try:
        with ManyHosts(HOSTS, PAGES, tmp / "requests.json") as hosts:
            sources = tmp / "sources.yaml"
            sources.write_text(yaml.safe_dump({"sources": hosts.sources(RATE)}, allow_unicode=True), encoding="utf-8")
            before = threading.active_count()
            with ThreadPeak() as threads:
                rows = nightly(sources_file=str(sources), warehouse_path=str(tmp / "warehouse.duckdb"))
            seen = hosts.stop()
    finally:
        patch.undo()
    return {row["source"]: row for row in rows}, seen, before, threads.peak


@pytest.mark.slow
def test_a_wide_crawl_fetches_every_page_of_every_host(wide_run):
    rows, seen, _, _ = wide_run
    assert len(rows) == HOSTS + 1
    assert rows["TOTAL"]["fetched"] == HOSTS * PAGES and rows["TOTAL"]["failed"] == 0
    assert len(seen.by_host) == HOSTS


@pytest.mark.slow
def test_hosts_are_crawled_together_not_one_after_another(wide_run):
    _, seen, _, _ = wide_run
    moment, busy = seen.busiest_moment()
    assert busy >= 0.8 * HOSTS  # one after another, it would be about 1
    assert seen.span() < seen.sum_of_minimums(RATE) / 5  # one after another: at least the sum


@pytest.mark.slow
def test_no_host_ever_saw_two_requests_within_its_interval_and_robots_once(wide_run):
    _, seen, _, _ = wide_run
    assert seen.too_close(RATE) == {}  # measured on the server's clock, over the whole run
    assert set(seen.robots_requests().values()) == {1}
    first_of_each = [requests[0][1] for requests in seen.by_host.values()]
    assert set(first_of_each) == {"/robots.txt"}  # asked before any page of its host


@pytest.mark.slow
def test_threads_and_connections_stay_within_the_bounds_not_the_hosts(wide_run):
    _, seen, before, peak = wide_run
    crawl_threads = BOUNDS["CRAWL_WORKERS"] + BOUNDS["CRAWL_TASKS"] + 1  # workers, task runs, the dispatcher
    assert peak <= before + crawl_threads + 8  # + what Prefect starts for a flow run (log and event workers)
    assert peak < HOSTS
    assert seen.peak_connections <= BOUNDS["CRAWL_WORKERS"] + BOUNDS["CRAWL_KEEP_ALIVE_HOSTS"]


# --- the scheduler alone -------------------------------------------------------------------------
def test_the_scheduler_interleaves_paced_hosts_on_few_threads_each_at_its_pace():
    limiter, rate, per_host = HostRateLimiter(), 20.0, 3
    starts: dict[str, list[float]] = {f"h{i}": [] for i in range(12)}
    done = threading.Semaphore(0)

    def request(host: str) -> bool:
        limiter.wait(host, rate)  # what the fetcher does: finds the host free, so does not sleep
        starts[host].append(time.monotonic())
        limiter.hold(host, rate)
        done.release()
        return True

    began = time.monotonic()
    with HostScheduler(workers=2, limiter=limiter) as scheduler:
        for _ in range(per_host):
            for host in starts:
                scheduler.submit(host, rate, lambda host=host: request(host))
        for _ in range(len(starts) * per_host):
            assert done.acquire(timeout=10)
        assert scheduler.stats.peak_running <= 2
    took = time.monotonic() - began
    for host, moments in starts.items():
        assert all(b - a >= 1 / rate for a, b in zip(moments, moments[1:])), host
    assert took < len(starts) * (per_host - 1) / rate / 3  # one after another: 1.2 s at least


def test_a_job_that_is_not_done_runs_again_first_at_its_hosts_next_slot():
    limiter, log, finished = HostRateLimiter(), [], threading.Event()

    def robots_then_page() -> bool:
        log.append("robots" if not log else "page")
        limiter.hold("h", 50.0)
        return len(log) > 1

    def second() -> bool:
        log.append("second")
        finished.set()
        return True

    with HostScheduler(workers=4, limiter=limiter) as scheduler:
        scheduler.submit("h", 50.0, robots_then_page)
        scheduler.submit("h", 50.0, second)
        assert finished.wait(5)
    assert log == ["robots", "page", "second"]


def test_an_unpaced_host_gets_up_to_per_host_requests_at_once():
    running, peak, lock, done = [0], [0], threading.Lock(), threading.Semaphore(0)
    gate = threading.Barrier(3, timeout=5)  # three jobs must run together to pass it

    def job() -> bool:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gate.wait()
        with lock:
            running[0] -= 1
        done.release()
        return True

    with HostScheduler(workers=8, per_host=3) as scheduler:
        for _ in range(6):
            scheduler.submit("loopback", 0.0, job)
        for _ in range(6):
            assert done.acquire(timeout=10)
    assert peak[0] == 3 and scheduler.failure is None


def test_a_job_that_raises_stops_the_scheduler_and_is_kept_for_the_waiter():
    ran = []

    def stopping() -> bool:
        raise RunInterrupted("the run is stopping")

    with HostScheduler(workers=1) as scheduler:
        scheduler.submit("h", 0.0, stopping)
        deadline = time.monotonic() + 5
        while scheduler.failure is None and time.monotonic() < deadline:
            time.sleep(0.01)
        scheduler.submit("h", 0.0, lambda: ran.append(1) or True)
        time.sleep(0.1)
    assert isinstance(scheduler.failure, RunInterrupted) and ran == []


def test_the_limiter_counts_the_interval_from_the_response_as_well():
    now = [100.0]
    limiter = HostRateLimiter(clock=lambda: now[0], sleep=lambda seconds: None)
    assert limiter.wait("h", 2.0) == 0.0  # starts at 100.0; the next may start at 100.5 …
    now[0] = 100.3
    limiter.hold("h", 2.0)  # … but its response came at 100.3: not before 100.8
    assert limiter.ready_at("h") == pytest.approx(100.8)
    assert limiter.wait("h", 2.0) == pytest.approx(0.5)
    limiter.hold("h", 0)  # unpaced: nothing held
    assert limiter.ready_at("other") == 0.0


# --- what a crawl's Fetchers share ---------------------------------------------------------------
def _source(server: FaultServer, name: str) -> Source:
    return Source(name=name, region="r", listing_urls=[server.url("/page")], allowed_hosts=["127.0.0.1"],
                  rate_limit_per_second=0)  # fmt: skip


def test_fetchers_of_one_crawl_read_a_hosts_robots_txt_once_and_share_bounded_connections():
    with FaultServer() as server, ConnectionPools(keep_alive_hosts=2, per_host=1) as pools:
        robots = RobotsCache()
        first, second = (Fetcher(_source(server, name), rate_limiter=HostRateLimiter(), pools=pools, robots=robots)
                         for name in ("a", "b"))  # fmt: skip
        assert first.robots_pending(server.url("/page"))
        first.load_robots(server.url("/page"))
        assert not second.robots_pending(server.url("/page"))
        assert first.fetch(server.url("/page")).ok
        assert second.fetch(server.url("/private/x")).outcome is FetchOutcome.SKIPPED_ROBOTS
        assert server.hits("/robots.txt") == 1
        assert first.session.get_adapter("http://").poolmanager is pools.manager is second.session.get_adapter(
            "http://").poolmanager  # fmt: skip
        first.close()  # a Fetcher closing leaves the crawl's connections to the crawl
        assert second.fetch(server.url("/page")).ok


def test_a_robots_cache_with_another_unreachable_policy_is_refused():
    with FaultServer() as server, pytest.raises(ValueError, match="unreachable"):
        Fetcher(_source(server, "a"), robots=RobotsCache("deny"))


# --- the summary at width ------------------------------------------------------------------------
def wide_summary(sources: int, failing: int = 3, warned: int = 2) -> RunSummary:
    summary = RunSummary(run_id="20261204T000000Z-abcdef", started_at=datetime(2026, 12, 4, tzinfo=UTC),
                         status="completed")  # fmt: skip
    for i in range(sources):
        counts = summary.counts(f"county-{i:04d}")
        counts.discovered = counts.fetched = counts.new = 10
        counts.discovery = "1 listing page(s) read, 10 article links (10 new); read to the end of the pagination"
    for i in range(failing):
        counts = summary.counts(f"county-{10 * i + 5:04d}")
        counts.failed, counts.fetched, counts.new = i + 1, 10 - i - 1, 10 - i - 1
        counts.errors += [f"http://127.101.0.{i}/art/{n}.html: HTTP 404 Not Found" for n in range(i + 1)]
    for i in range(warned):
        summary.counts(f"county-{10 * i + 7:04d}").warnings.append("the listing declares 12 records; 10 found")
    summary.timings = {"discover": 1.5, "fetch": 10.2}
    return summary


def test_a_wide_summary_starts_with_the_totals_and_shows_only_the_sources_with_something_to_say():
    text = format_summary(wide_summary(1000), limit=20)
    lines = text.splitlines()
    assert lines[1].startswith("1,000 sources, 995 with nothing to report; the 5 with failures, warnings or gone links")
    assert "etl-run-summary" in lines[1] and "run_sources" in lines[1]
    assert lines[2].split()[:2] == ["source", "discovered"] and lines[4].startswith("TOTAL")
    shown = [line.split()[0] for line in lines[6:11]]
    assert shown == ["county-0025", "county-0015", "county-0005", "county-0007", "county-0017"]  # gravest first
    assert "county-0001" not in text and "… and" not in text  # nothing to say; nothing left out
    assert "discovery, of the sources above (5):" in text
    assert "problems: failures of this run and rejects, of the sources above (6):" in text
    assert len(lines) < 40  # not a thousand


def test_a_wide_summary_with_more_to_say_than_the_limit_says_how_many_more():
    summary = wide_summary(1000, failing=30, warned=0)
    text, markdown = format_summary(summary, limit=20), summary_markdown(summary, limit=20)
    for shown in (text, markdown):
        assert "the gravest 20 of the 30 with failures, warnings or gone links below" in shown
        assert "… and 10 more with failures, warnings or gone links (see the etl-run-summary artifact / run_sources)" in shown
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert table[1].startswith("| TOTAL | 10000 |") and len(table) == 1 + 1 + 20  # header, total, 20 sources


def test_a_narrow_summary_is_as_it_always_was():
    summary = wide_summary(5, failing=1, warned=1)  # county-0000 … 0004, 0005 failing, 0007 warned
    text = format_summary(summary)
    lines = text.splitlines()
    assert lines[1].split()[:2] == ["source", "discovered"]
    names = [f"county-{i:04d}" for i in (0, 1, 2, 3, 4, 5, 7)]
    assert [line.split()[0] for line in lines[3:11]] == [*names, "TOTAL"]  # every source, the total last
    assert "of the sources above" not in text and "nothing to report" not in text
    assert summary_markdown(summary).splitlines()[-1].startswith("- county-0005: http://")


def test_the_table_artifact_has_the_total_first_and_every_source_with_its_first_remark():
    rows = artifact_rows(wide_summary(1000))
    assert len(rows) == 1001 and rows[0]["source"] == "TOTAL" and rows[0]["fetched"] == 10000 - 6
    by_source = {row["source"]: row for row in rows}
    assert by_source["county-0025"]["remarks"] == ("http://127.101.0.2/art/0.html: HTTP 404 Not Found (and 2 more)")
    assert by_source["county-0007"]["remarks"].startswith("warning: the listing declares 12 records")
    assert by_source["county-0001"]["remarks"] == ""
    assert Counter(bool(row["remarks"]) for row in rows[1:]) == {False: 995, True: 5}


def test_remarks_fit_one_cell():
    counts = SourceCounts("x", errors=["e" * 1000])
    assert len(artifact_rows(RunSummary("r", datetime.now(UTC), sources={"x": counts}))[1]["remarks"]) == 300


def test_hosts_log_reads_spacing_robots_and_the_busiest_moment():
    seen = HostLog([("a", "/robots.txt", 0.0, 200), ("a", "/1", 1.0, 200), ("a", "/2", 2.0, 200),
                    ("b", "/robots.txt", 0.5, 200), ("b", "/1", 0.9, 200),
                    ("c", "/robots.txt", 5.0, 200), ("c", "/robots.txt", 6.0, 200)], 3, 4, 0.1)  # fmt: skip
    assert seen.closest_gaps() == {"a": 1.0, "b": pytest.approx(0.4), "c": 1.0}
    assert seen.too_close(1.0) == {"b": pytest.approx(0.4)}
    assert seen.robots_requests() == {"a": 1, "b": 1, "c": 2}
    assert seen.slowest_minimum(1.0) == 2.0 and seen.sum_of_minimums(1.0) == 2.0 + 1.0 + 1.0
    assert seen.busiest_moment() == (0.5, 2) and seen.span() == 6.0

