"""Prefect tasks: thin wrappers that give the pure functions retries, logs and a place in the UI.

The crawl is a few tasks, each a slice of the sources (CRAWL_TASKS), all crawling at once
on one scheduler: a task run costs Prefect milliseconds of this process's CPU, which a
thousand sources would multiply (BENCHMARKS.md); what happened per source is in each
task's result and the run summary. Extracting is one task per batch of pages (never one
per metric), given only data (page bytes, sources), so it may run on a Dask worker;
loading is the flow process's own (`BatchLoader`, the warehouse's one writer). The crawl
tasks receive live objects (the crawl, the archive) because they run in the flow's
process; `cache_policy=NONE` keeps Prefect from hashing them (Prefect issues #16042, #16557).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import socket
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from datetime import datetime
from typing import Generic, TypeVar

import duckdb
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from tasks import settings
from tasks.crawl.archive import ArchivedFetch, RawArchive
from tasks.crawl.crawler import Crawl, SourceCrawled, describe_plan
from tasks.extract.compiled import is_compiled
from tasks.pages import ArchivedPage, page_record
from tasks.records import LoadOutcome, PageRecord, Source
from warehouse import load_pages
from warehouse.backend.connect import budget_setting, memory_limit, out_of_memory
from warehouse.writer.load import StagedPages, checkpoint

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Timed(Generic[T]):
    """A task's result and the seconds it worked (the benchmark splits a run by stage)."""

    value: T
    seconds: float
    notes: list[str] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)  # seconds per pipeline stage, when several


@task(cache_policy=NONE, task_run_name="crawl-{label}")
def crawl_sources(crawl: Crawl, names: list[str], label: str) -> Timed[list[SourceCrawled]]:
    """Discover and download these sources (all at once, with the rest of the crawl) into
    the raw archive. Logs each source's warnings and failures; what discovery found, per
    source when the task has one (a narrow run), else in one line of totals (a line costs
    Prefect's console and API handlers a millisecond or two: a thousand would be seconds)."""
    started = time.perf_counter()
    crawled = crawl.run(names)
    logger = get_run_logger()
    for done in crawled:
        if done.plan is not None and len(crawled) == 1:
            logger.info("%s: %s", done.source, describe_plan(done.plan))
        for warning in done.plan.warnings if done.plan else []:
            logger.warning("%s: %s", done.source, warning)
        for error in done.errors:
            logger.warning("%s: %s", done.source, error)
    if len(crawled) > 1:
        plans = [done.plan for done in crawled if done.plan is not None]
        logger.info("%d sources: %d listing page(s) read, %d article links (%d new), %d downloads planned%s",
                    len(crawled), sum(len(p.discovery.pages_read) for p in plans),
                    sum(len(p.discovery.links) for p in plans), sum(p.discovery.new_links for p in plans),
                    sum(len(p.fetches) for p in plans),
                    f"; discovery failed for {len(crawled) - len(plans)}" if len(plans) < len(crawled) else "")  # fmt: skip
    return Timed(crawled, time.perf_counter() - started)


@task(cache_policy=NONE, task_run_name="extract-{batch_no}")
def extract_batch(pages: list[ArchivedPage], sources: dict[str, Source], batch_no: int = 0) -> Timed[list[PageRecord]]:
    """Archived pages, their bytes with them → PageRecords (extracted, search words marked).

    Pure: the same in the flow's process or on a Dask worker, which gets all it needs with
    the task (tasks/pages.py). `notes` says where it ran and which extractor ran there."""
    started = time.perf_counter()
    records = [page_record(page.fetch, page.body, sources.get(page.fetch.source)) for page in pages]
    return Timed(records, time.perf_counter() - started, notes=[extractor_note()])


def extractor_note() -> str:
    """Where this process is and which extractor it runs: the mypyc build or the interpreted modules."""
    build = "compiled extractor" if is_compiled("tasks.extract.metrics") else "interpreted extractor"
    return f"{socket.gethostname()} pid {os.getpid()}: {build}"


class BatchLoader:
    """The loading half of a run, in the flow's process: each extracted batch is staged as it
    comes (warehouse.writer.load.StagedPages), and a load transaction commits once
    `rows_per_transaction` rows are staged, and at `finish`; then its pages are marked loaded
    in the raw archive. `add` and `finish` return the outcomes of what they committed.

    A transaction the warehouse refuses (rolled back, nothing written) is loaded again the
    old way: its pages extracted again from the archive in this process, batch by batch,
    through load_isolating, which quarantines the page at fault. Rare, and no page is lost.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, archive: RawArchive, run_id: str,
                 sources: dict[str, Source], rows_per_transaction: int = settings.LOAD_TRANSACTION_ROWS) -> None:  # fmt: skip
        self.con, self.archive, self.run_id, self.sources = con, archive, run_id, sources
        self.rows_per_transaction = rows_per_transaction
        self.transactions = 0
        self.rows_since_checkpoint = 0  # rows committed since the last checkpoint (settings.LOAD_CHECKPOINT_ROWS)
        self._staged: StagedPages | None = None
        self._fetches: list[ArchivedFetch] = []  # of the pages staged, to mark or to load again

    def add(self, fetches: list[ArchivedFetch], pages: list[PageRecord]) -> list[LoadOutcome]:
        """Stage one extracted batch (`pages`, of `fetches`); commit if the budget is reached."""
        if self._staged is None:
            self._staged = StagedPages(self.con, self.run_id, datetime.now().astimezone())
        self._fetches += fetches
        try:
            self._staged.add(pages)
        except _REFUSALS as exc:
            return self._load_again(exc)
        return self.commit() if self._staged.rows >= self.rows_per_transaction else []

    def finish(self) -> list[LoadOutcome]:
        """Commit what is staged."""
        return self.commit() if self._staged is not None else []

    def commit(self) -> list[LoadOutcome]:
        """Commit what is staged as one transaction. One that needs more than the writer's
        memory budget is tried again under WAREHOUSE_MEMORY_LIMIT_LARGE (the staged tables
        outlive the rollback); one refused otherwise is loaded again (class docstring)."""
        staged = self._staged
        if staged is None:
            return []
        try:
            try:
                outcomes = staged.commit()
            except _REFUSALS as exc:  # the transaction rolled back
                if not out_of_memory(exc):
                    raise
                log.warning("a load transaction of %d pages needs more memory than the writer's budget; tried again "
                            "under %s (lower GOVETL_LOAD_TRANSACTION_ROWS if this recurs): %s", len(staged),
                            settings.WAREHOUSE_MEMORY_LIMIT_LARGE, str(exc).splitlines()[0])  # fmt: skip
                with memory_limit(self.con, settings.WAREHOUSE_MEMORY_LIMIT_LARGE):
                    outcomes = staged.commit()
        except _REFUSALS as exc:
            if isinstance(exc, duckdb.TransactionException) and not out_of_memory(exc):
                raise
            return self._load_again(exc)
        self.rows_since_checkpoint += staged.rows
        self._mark_loaded()
        if self.rows_since_checkpoint >= settings.LOAD_CHECKPOINT_ROWS:
            self.checkpoint()
        return outcomes

    def checkpoint(self) -> None:
        """Write what was committed into the main file (warehouse.writer.load.checkpoint), which
        also lets the writer drop the keys' indexes from its memory."""
        checkpoint(self.con)
        self.rows_since_checkpoint = 0

    def discard(self) -> None:
        """Drop what is staged and not committed (a run that stops: the pages stay unloaded
        in the archive, and the next run loads them)."""
        if self._staged is not None:
            self._staged.discard()
        self._staged, self._fetches = None, []

    def _mark_loaded(self) -> None:
        self.archive.mark_loaded([f.fetch_id for f in self._fetches], self.run_id)
        self.transactions += 1
        self._staged, self._fetches = None, []
        release_free_memory()

    def _load_again(self, refusal: Exception) -> list[LoadOutcome]:
        fetches = self._fetches
        log.warning("the warehouse refused a load transaction of %d pages (%s); they are loaded again, %d at a "
                    "time", len(fetches), str(refusal).splitlines()[0], settings.BATCH_SIZE)  # fmt: skip
        self.discard()
        outcomes: list[LoadOutcome] = []
        observed_at = datetime.now().astimezone()
        for chunk in batches(fetches, settings.BATCH_SIZE):
            pages = [page_record(f, self.archive.body(f.fetch_id), self.sources.get(f.source)) for f in chunk]
            outcomes += load_isolating(self.con, self.run_id, pages, observed_at)
            self.archive.mark_loaded([f.fetch_id for f in chunk], self.run_id)
        self.transactions += 1
        release_free_memory()
        return outcomes


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
        if isinstance(exc, duckdb.TransactionException) and not out_of_memory(exc):
            raise
        refusal = exc
    if out_of_memory(refusal) and not roomier:
        log.warning("%d pages need more memory than the writer's budget; retried under %s "
                    "(raise %s if this recurs): %s", len(pages), settings.WAREHOUSE_MEMORY_LIMIT_LARGE,
                    budget_setting(con), str(refusal).splitlines()[0])  # fmt: skip
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
