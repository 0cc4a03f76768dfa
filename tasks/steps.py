"""Prefect tasks: thin wrappers that give the pure functions retries, logs and a place in the UI.

One task per source for discovery, one per batch of pages for fetching, extracting and
loading (never one per metric). Tasks receive live objects (a Fetcher, the archive, a
DuckDB connection) because they run in the flow's process; `cache_policy=NONE` keeps
Prefect from hashing them (Prefect issues #16042, #16557).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

import duckdb
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from tasks import settings
from tasks.crawl.archive import ArchivedFetch, FrontierLink, RawArchive
from tasks.crawl.discover import (Discovery, FetchItem, describe_discovery, discovery_warnings, plan_fetches,
                                  walk_listing)  # fmt: skip
from tasks.crawl.encoding import decode_html
from tasks.crawl.fetch import Fetcher
from tasks.pages import page_record
from tasks.records import FetchOutcome, FetchResult, LoadOutcome, PageRecord, Source
from warehouse import load_pages
from warehouse.connect import memory_limit

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Timed(Generic[T]):
    """A task's result and the seconds it worked (the benchmark splits a run by stage)."""

    value: T
    seconds: float
    notes: list[str] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)  # seconds per pipeline stage, when several


@dataclass
class SourcePlan:
    """What discovery decided for one source: the walk, the downloads, what to tell the operator."""

    discovery: Discovery
    fetches: list[FetchItem]
    left_by_earlier_runs: int  # planned links an earlier run found and did not finish
    gone: list[FrontierLink]  # links gone (404/410), not requested before their re-check
    warnings: list[str]
    listing_failures: list[str]  # one sentence per listing page that could not be read


@task(cache_policy=NONE, task_run_name="discover-{source.name}")
def discover_source(source: Source, fetcher: Fetcher, archive: RawArchive, run_id: str,
                    revalidate_after_hours: float) -> Timed[SourcePlan]:  # fmt: skip
    """Read the column pages into the frontier (pages earlier runs left first); plan the
    downloads: the frontier's due links, and known pages due a re-check."""
    started = time.perf_counter()
    failures: list[str] = []
    gone_after = gone_recheck_after(source)

    def read_listing(url: str) -> str | None:
        result = fetcher.fetch(url)
        if result.outcome is not FetchOutcome.FETCHED or result.body is None:
            # Logged in the fetch log like any download, and failed (or gone) in the frontier:
            # the next run reads it again.
            archive.record_listing_failure(run_id, source.name, result, gone_recheck_after=gone_after)
            failures.append(f"listing page {url}: {result.reason or result.outcome}")
            return None
        return decode_html(result.body, result.content_type).text

    now = datetime.now(UTC)
    earlier = set(archive.due_links(source.name, now))
    discovery = walk_listing(source, read_listing, archive.frontier_urls(),
                             resume=archive.listing_resume(source.name, now),
                             stop_when_known=archive.walked_before(source.name),
                             skip=archive.listing_not_due(source.name, now),
                             on_page=lambda page: archive.record_listing_page(run_id, source.name, page))  # fmt: skip
    archive.finish_listing_walk(run_id, discovery)
    due = archive.due_links(source.name, now)
    hours = source.revalidate_after_hours if source.revalidate_after_hours is not None else revalidate_after_hours
    revalidate = archive.due_for_revalidation(source.name, timedelta(hours=hours), now)
    plan = SourcePlan(discovery, plan_fetches(due, revalidate, archive.page_states(due)),
                      left_by_earlier_runs=len(earlier.intersection(due)), gone=archive.gone_waiting(source.name, now),
                      warnings=discovery_warnings(discovery, archive.links_known(source.name)),
                      listing_failures=failures)  # fmt: skip
    get_run_logger().info("%s: %s", source.name, describe_plan(plan))
    for warning in plan.warnings:
        get_run_logger().warning("%s: %s", source.name, warning)
    return Timed(plan, time.perf_counter() - started)


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


@task(cache_policy=NONE, task_run_name="fetch-{source.name}-{batch_no}")
def fetch_batch(source: Source, fetcher: Fetcher, archive: RawArchive, run_id: str,
                items: list[FetchItem], batch_no: int = 0) -> Timed[list[FetchResult]]:  # fmt: skip
    """Download a batch of pages into the raw archive (and the frontier); return their
    outcomes without bodies."""
    started = time.perf_counter()
    results: list[FetchResult] = []
    gone_after = gone_recheck_after(source)
    for item in items:
        result = fetcher.fetch(item.url, etag=item.etag, last_modified=item.last_modified)
        archive.record(run_id, source.name, result, gone_recheck_after=gone_after)
        result.body = None  # it is in the archive now; do not hold the corpus in memory
        results.append(result)
    return Timed(results, time.perf_counter() - started)


@task(cache_policy=NONE, task_run_name="extract-load-{batch_no}")
def extract_load_batch(con: duckdb.DuckDBPyConnection, archive: RawArchive, run_id: str,
                       fetches: list[ArchivedFetch], sources: dict[str, Source],
                       batch_no: int = 0) -> Timed[list[LoadOutcome]]:  # fmt: skip
    """Archived pages → PageRecords → one load transaction; then mark them loaded in the archive.

    One task for both steps: the extracted pages (bodies, outlines, metrics) never leave
    the task, so no batch of them outlives its load. Returns the LoadOutcomes, with the
    seconds of each step in `stages`, for the run's stage timings.
    """
    started = time.perf_counter()
    pages = [page_record(f, archive.body(f.fetch_id), sources.get(f.source)) for f in fetches]
    extracted = time.perf_counter()
    outcomes = load_isolating(con, run_id, pages, datetime.now().astimezone())
    archive.mark_loaded([p.fetch_id for p in pages if p.fetch_id is not None], run_id)
    del pages
    release_free_memory()
    loaded = time.perf_counter()
    return Timed(outcomes, loaded - started, stages={"extract": extracted - started, "load": loaded - extracted})


def load_isolating(con: duckdb.DuckDBPyConnection, run_id: str, pages: list[PageRecord],
                   observed_at: datetime, *, roomier: bool = False) -> list[LoadOutcome]:  # fmt: skip
    """load_pages, except that one odd page never fails the run (nor every later run, since
    it would stay unloaded in the archive). A batch too big for the writer's memory budget
    is retried under WAREHOUSE_MEMORY_LIMIT_LARGE; a batch the warehouse still refuses is
    bisected until the page is alone, and that page is quarantined as a `load_error`
    reject. Lock, disk and I/O errors propagate."""
    try:
        return load_pages(con, run_id, pages, observed_at)
    except _REFUSALS as exc:  # load_pages rolled the batch back
        if isinstance(exc, duckdb.TransactionException) and not _out_of_memory(exc):
            raise
        refusal = exc
    if _out_of_memory(refusal) and not roomier:
        log.warning("%d pages need more memory than the writer's budget; retried under %s "
                    "(raise GOVETL_WAREHOUSE_MEMORY_LIMIT if this recurs): %s",
                    len(pages), settings.WAREHOUSE_MEMORY_LIMIT_LARGE, str(refusal).splitlines()[0])  # fmt: skip
        with memory_limit(con, settings.WAREHOUSE_MEMORY_LIMIT_LARGE):
            return load_isolating(con, run_id, pages, observed_at, roomier=True)
    if len(pages) > 1:
        half = len(pages) // 2
        return (load_isolating(con, run_id, pages[:half], observed_at, roomier=roomier)
                + load_isolating(con, run_id, pages[half:], observed_at, roomier=roomier))
    log.warning("the warehouse refused %s; quarantined as load_error: %s", pages[0].url, refusal)
    refused = replace(pages[0], extraction=None, reject_reason=f"load_error: {type(refusal).__name__}: {refusal}")
    return load_pages(con, run_id, [refused], observed_at)


# What the warehouse may refuse of a batch. A commit that runs out of memory surfaces as a
# TransactionException ("Failed to commit: failed to pin block"); other transaction errors propagate.
_REFUSALS = (duckdb.DataError, duckdb.IntegrityError, duckdb.OutOfMemoryException, duckdb.TransactionException)


def _out_of_memory(exc: Exception) -> bool:
    return isinstance(exc, duckdb.OutOfMemoryException) or (
        isinstance(exc, duckdb.TransactionException) and "memory limit" in str(exc).lower())


def batches(items: list, size: int = settings.BATCH_SIZE) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# --- memory between batches ---------------------------------------------------------------
# Freed heap memory goes back to the operating system between batches. A nightly run extracts and loads thousands of pages batch by batch; each batch frees
# what it allocated, but glibc keeps freed pages in its arenas, so the process's resident
# size only grows. malloc_trim(0) returns them (measured: ~50 MB less at 1,000 pages;
# BENCHMARKS.md). Elsewhere than glibc it does nothing.


@lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


def release_free_memory() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
