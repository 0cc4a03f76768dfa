"""A run's crawl: every source's discovery and downloads, all sources at once, on one scheduler.

Each source is a chain of requests (`SourceCrawl`): its listing pages one after another
(the walk of tasks/crawl/discover.py, which yields the next page to read), then the plan
(the frontier's due links and the pages due a re-check), then its downloads, each recorded
in the raw archive as it arrives. Every request is a job of the crawl's `HostScheduler`,
so a thousand sources move forward together on CRAWL_WORKERS threads, each host at its
own rate, and a source starts downloading as soon as its own discovery is over.

The jobs run in the scheduler's threads and catch their own errors: a source whose
discovery raises is failed with the reason ("discovery failed: …"), a download that
raises is a failure of that page, and the other sources go on. Only a stop request
(RunInterrupted) stops the whole crawl: `Crawl.run` raises it.

`Crawl` also owns what its Fetchers share: the connections (ConnectionPools: bounded
whatever the number of hosts) and the robots.txt rules (one download per host).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

from tasks import settings
from tasks.crawl.archive import FrontierLink, RawArchive
from tasks.crawl.discover import (Discovery, FetchItem, Walk, describe_discovery, discovery_warnings, listing_walk,
                                  plan_fetches)  # fmt: skip
from tasks.crawl.encoding import decode_html
from tasks.crawl.fetch import ConnectionPools, Fetcher
from tasks.crawl.ratelimit import SHARED_LIMITER, HostRateLimiter
from tasks.crawl.robots import RobotsCache
from tasks.crawl.runlock import RunInterrupted
from tasks.crawl.scheduler import HostScheduler
from tasks.records import FetchOutcome, FetchResult, Source

log = logging.getLogger(__name__)

WAIT_STEP = 0.2  # seconds between two looks at the scheduler's failure while waiting for sources


@dataclass
class SourcePlan:
    """What discovery decided for one source: the walk, the downloads, what to tell the operator."""

    discovery: Discovery
    fetches: list[FetchItem]
    left_by_earlier_runs: int  # planned links an earlier run found and did not finish
    gone: list[FrontierLink]  # links gone (404/410), not requested before their re-check
    warnings: list[str]
    listing_failures: list[str]  # one sentence per listing page that could not be read


@dataclass
class SourceCrawled:
    """What the crawl of one source did: its plan (None when discovery failed), its
    downloads (bodies dropped: they are in the archive), and what went wrong beyond them."""

    source: str
    plan: SourcePlan | None
    fetches: list[FetchResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "discovery failed: …", "fetch failed: URL: …"
    discovered_at: float | None = None  # time.perf_counter() when its discovery was over
    finished_at: float | None = None


def describe_plan(plan: SourcePlan) -> str:
    """The discovery line of the summary: the walk, then what the frontier adds to it."""
    line = describe_discovery(plan.discovery)
    if plan.left_by_earlier_runs:
        line += f"; {plan.left_by_earlier_runs} link(s) left by earlier runs fetched first"
    return line


def gone_recheck_after(source: Source) -> timedelta:
    """How long a gone (404/410) link of `source` waits before it is requested again."""
    days = source.gone_recheck_after_days
    return timedelta(days=days if days is not None else settings.GONE_RECHECK_AFTER_DAYS)


class Crawl:
    """One run's crawl of many sources: add each with its Fetcher (built on `pools` and
    `robots`), then `run` them, in as many slices as wanted, from as many threads."""

    def __init__(self, archive: RawArchive, run_id: str, revalidate_after_hours: float, *,
                 workers: int = settings.CRAWL_WORKERS, keep_alive_hosts: int = settings.CRAWL_KEEP_ALIVE_HOSTS,
                 per_host: int = settings.CRAWL_CONNECTIONS_PER_HOST,
                 limiter: HostRateLimiter = SHARED_LIMITER) -> None:  # fmt: skip
        self.archive, self.run_id, self.revalidate_after_hours = archive, run_id, revalidate_after_hours
        self.pools = ConnectionPools(keep_alive_hosts, per_host)
        self.robots = RobotsCache()
        self.scheduler = HostScheduler(workers, per_host, limiter)
        self._sources: dict[str, SourceCrawl] = {}
        self._known: set[str] | None = None
        self._known_lock = threading.Lock()

    def __enter__(self) -> Crawl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.scheduler.close()
        self.pools.close()

    def add(self, source: Source, fetcher: Fetcher) -> None:
        self._sources[source.name] = SourceCrawl(self, source, fetcher)

    def run(self, names: list[str]) -> list[SourceCrawled]:
        """Crawl these sources (each starts as soon as it is read from the archive) and wait
        for all of them. Raises what stopped the scheduler (RunInterrupted), if anything did."""
        crawls = [self._sources[name] for name in names]
        for crawl in crawls:
            crawl.start()
        for crawl in crawls:
            while not crawl.done.wait(WAIT_STEP):
                self._raise_if_stopped()
            self._raise_if_stopped()
        return [crawl.crawled for crawl in crawls]

    def known_links(self) -> set[str]:
        """Every article link the frontier held when the crawl began (read once, not per source)."""
        with self._known_lock:
            if self._known is None:
                self._known = self.archive.frontier_urls()
            return self._known

    def _raise_if_stopped(self) -> None:
        failure = self.scheduler.failure
        if failure is not None:
            raise failure


class SourceCrawl:
    """One source's chain of requests: each step runs in a scheduler thread and submits the next."""

    def __init__(self, crawl: Crawl, source: Source, fetcher: Fetcher) -> None:
        self.crawl, self.source, self.fetcher = crawl, source, fetcher
        self.crawled = SourceCrawled(source.name, plan=None)
        self.done = threading.Event()
        self._gone_after = gone_recheck_after(source)
        self._failures: list[str] = []  # listing pages that could not be read
        self._walk: Walk | None = None
        self._earlier: set[str] = set()
        self._now = datetime.now(UTC)
        self._pending = 0
        self._lock = threading.Lock()

    # -- discovery
    def start(self) -> None:
        """Read what the archive knows of the source and ask for its first listing page."""
        try:
            archive, name = self.crawl.archive, self.source.name
            self._now = datetime.now(UTC)
            self._earlier = set(archive.due_links(name, self._now))
            self._walk = listing_walk(self.source, self.crawl.known_links(),
                                      resume=archive.listing_resume(name, self._now),
                                      stop_when_known=archive.walked_before(name),
                                      skip=archive.listing_not_due(name, self._now),
                                      on_page=partial(archive.record_listing_page, self.crawl.run_id, name))  # fmt: skip
            self._walk_on(next(self._walk))
        except StopIteration as walked:
            self._discovered(walked.value)
        except RunInterrupted:
            raise
        except Exception as exc:  # one source's trouble never stops the others
            self._fail(exc)

    def _walk_on(self, url: str) -> None:
        self._submit(url, self._listing_read, urgent=True)

    def _listing_read(self, url: str, result: FetchResult) -> None:
        assert self._walk is not None
        if result.outcome is not FetchOutcome.FETCHED or result.body is None:
            # Logged in the fetch log like any download, and failed (or gone) in the frontier:
            # the next run reads it again.
            self.crawl.archive.record_listing_failure(self.crawl.run_id, self.source.name, result,
                                                      gone_recheck_after=self._gone_after)  # fmt: skip
            self._failures.append(f"listing page {url}: {result.reason or result.outcome}")
            html = None
        else:
            html = decode_html(result.body, result.content_type).text
        try:
            next_url = self._walk.send(html)
        except StopIteration as walked:
            self._discovered(walked.value)
            return
        self._walk_on(next_url)

    def _discovered(self, discovery: Discovery) -> None:
        """The walk is over: record it, plan the downloads and queue them."""
        archive, name = self.crawl.archive, self.source.name
        archive.finish_listing_walk(self.crawl.run_id, discovery)
        due = archive.due_links(name, self._now)
        hours = self.source.revalidate_after_hours
        hours = hours if hours is not None else self.crawl.revalidate_after_hours
        revalidate = archive.due_for_revalidation(name, timedelta(hours=hours), self._now)
        plan = SourcePlan(discovery, plan_fetches(due, revalidate, archive.page_states(due)),
                          left_by_earlier_runs=len(self._earlier.intersection(due)),
                          gone=archive.gone_waiting(name, self._now),
                          warnings=discovery_warnings(discovery, archive.links_known(name)),
                          listing_failures=self._failures)  # fmt: skip
        self.crawled.plan = plan
        self.crawled.discovered_at = time.perf_counter()
        self._pending = len(plan.fetches)
        if not plan.fetches:
            self._finish()
        for item in plan.fetches:
            self._submit(item.url, partial(self._fetched, item), item=item)

    # -- downloads
    def _fetched(self, item: FetchItem, url: str, result: FetchResult) -> None:
        self.crawl.archive.record(self.crawl.run_id, self.source.name, result, gone_recheck_after=self._gone_after)
        result.body = None  # it is in the archive now; do not hold the corpus in memory
        result.headers = {}  # archived too; held until the run's end, they were ~1 KB a page
        with self._lock:
            self.crawled.fetches.append(result)
        self._one_less()

    def _one_less(self) -> None:
        with self._lock:
            self._pending -= 1
            last = self._pending == 0
        if last:
            self._finish()

    # -- one request
    def _submit(self, url: str, then: Callable[[str, FetchResult], None], *, item: FetchItem | None = None,
                urgent: bool = False) -> None:  # fmt: skip
        job = partial(self._request, url, then, item)
        self.crawl.scheduler.submit(urlsplit(url).hostname or "", self.fetcher.rate, job, urgent=urgent)

    def _request(self, url: str, then: Callable[[str, FetchResult], None], item: FetchItem | None) -> bool:
        """One job: the host's robots.txt if it is not read yet (then run again at the next
        slot), else the page and what follows from it."""
        try:
            if self.fetcher.robots_pending(url):
                self.fetcher.load_robots(url)
                return False
            result = self.fetcher.fetch(url, etag=item.etag if item else None,
                                        last_modified=item.last_modified if item else None)  # fmt: skip
            then(url, result)
        except RunInterrupted:
            raise
        except Exception as exc:  # a page's or a listing's own trouble: the rest goes on
            if item is None:
                self._fail(exc)
            else:
                log.warning("%s: fetching %s failed", self.source.name, url, exc_info=True)
                with self._lock:
                    self.crawled.errors.append(f"fetch failed: {url}: {type(exc).__name__}: {exc}")
                self._one_less()
        return True

    def _fail(self, exc: Exception) -> None:
        log.warning("%s: discovery failed", self.source.name, exc_info=True)
        self.crawled.errors.append(f"discovery failed: {type(exc).__name__}: {exc}")
        self.crawled.plan = None
        self._finish()

    def _finish(self) -> None:
        self.crawled.finished_at = time.perf_counter()
        self.done.set()
