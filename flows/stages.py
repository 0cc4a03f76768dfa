"""The two halves of a run, shared by the nightly and reprocess flows.

`crawl` (discover + fetch into the raw archive) needs no warehouse; `load_archived`
(extract + load) needs the DuckDB file. Keeping them apart is what lets a run whose
warehouse is locked by an analyst keep everything it fetched: the next run's
`load_archived` picks it up from the archive.

The archive's loaded marks are only believed for runs the warehouse has a record of: a new
warehouse, or one replaced or restored from before those runs, gets their pages again. The
warehouse's fetch_log receives every archived fetch newer than its newest row, whichever
run wrote it, so an interrupted run's fetch log arrives with the next run.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager

import duckdb
from prefect.futures import PrefectConcurrentFuture, wait
from prefect.task_runners import ThreadPoolTaskRunner

from flows.cluster import ExtractFailed, ExtractOn, extractor, report_extractors
from flows.interrupt import ledger_write
from flows.runner import DiskFull, add_note, disk_full_reason
from tasks import settings
from tasks.crawl.archive import ArchivedFetch, RawArchive
from tasks.crawl.crawler import Crawl, SourceCrawled, SourcePlan, describe_plan, gone_recheck_after
from tasks.crawl.fetch import Fetcher, caps_that_bit
from tasks.crawl.runlock import RunInterrupted
from tasks.records import LoadOutcome, Source
from tasks.steps import BatchLoader, Timed, batches, crawl_sources
from tasks.summary import RunSummary, SourceCounts
from warehouse import connect, finish_run, record_fetch_log, run_checks, snapshot, start_run
from warehouse.writer.history import history_notes
from warehouse.writer.runs import RUN_COUNTS

log = logging.getLogger(__name__)


def crawl(sources: list[Source], archive: RawArchive, summary: RunSummary, revalidate_after_hours: float) -> None:
    """Crawl every source at once into the raw archive: each source's listing pages, then
    its downloads, as requests of one scheduler (tasks/crawl/crawler.py), shared out into
    CRAWL_TASKS task runs. They run on a thread pool of their own, in this process, whatever
    the flow's task runner: they hold live objects (the scheduler, connections, the archive).

    Discovery records every link in the archive's frontier before anything is fetched, so
    an interrupted or failed run leaves its unfinished links for the next one. In the
    summary's seconds, `discover` runs until the last source's discovery is over and `fetch`
    from there to the last download (a source downloads as soon as its own discovery is over).
    """
    started = time.perf_counter()
    with ExitStack() as stack:
        run = stack.enter_context(Crawl(archive, summary.run_id, revalidate_after_hours,
                                        workers=settings.CRAWL_WORKERS, keep_alive_hosts=settings.CRAWL_KEEP_ALIVE_HOSTS,
                                        per_host=settings.CRAWL_CONNECTIONS_PER_HOST))  # fmt: skip
        for source in sources:
            run.add(source, stack.enter_context(Fetcher(source, pools=run.pools, robots=run.robots)))
        crawled = _crawl_in_tasks(run, _slices([s.name for s in sources], settings.CRAWL_TASKS))
    by_name = {source.name: source for source in sources}
    for done in crawled:
        _count_crawl(summary.counts(done.source), done, by_name[done.source])
    discovered = max((done.discovered_at or done.finished_at or started for done in crawled), default=started)
    summary.timings["discover"] = discovered - started
    summary.timings["fetch"] = time.perf_counter() - discovered


def _slices(names: list[str], tasks: int) -> list[tuple[str, list[str]]]:
    """The sources in at most `tasks` runs of consecutive ones, each with its task-run label."""
    size = -(-len(names) // max(1, tasks))
    chunks = [names[i:i + size] for i in range(0, len(names), size)] if names else []
    return [(chunk[0] if len(chunk) == 1 else f"{chunk[0]}…{chunk[-1]}", chunk) for chunk in chunks]


def _crawl_in_tasks(run: Crawl, slices: list[tuple[str, list[str]]]) -> list[SourceCrawled]:
    """One crawl_sources task run per slice, all at once; a task run that failed fails its
    sources with its reason, except a stop request, which is raised."""
    if not slices:
        return []
    futures: list[tuple[list[str], PrefectConcurrentFuture[Timed[list[SourceCrawled]]]]] = []
    runner: ThreadPoolTaskRunner[PrefectConcurrentFuture]
    with ThreadPoolTaskRunner(max_workers=len(slices)) as runner:
        for label, names in slices:
            # The ignore: Prefect types submit's task as returning `R | Coroutine[R]`, which
            # mypy cannot solve for a plain task.
            futures.append((names, runner.submit(crawl_sources, {"crawl": run, "names": names,  # type: ignore[arg-type]
                                                                 "label": label})))  # fmt: skip
        wait([future for _, future in futures])
    crawled: list[SourceCrawled] = []
    for names, future in futures:
        if future.state.is_completed():
            crawled += future.result().value
            continue
        failure = future.state.result(raise_on_failure=False)
        if isinstance(failure, RunInterrupted):
            raise failure
        crawled += [SourceCrawled(name, plan=None, errors=[f"crawl task failed: {future.state.message}"])
                    for name in names]  # fmt: skip
    return crawled


def _count_crawl(counts: SourceCounts, done: SourceCrawled, source: Source) -> None:
    """What the crawl of one source adds to the summary: discovery, downloads, failures."""
    if done.plan is not None:
        _count_discovery(counts, done.plan)
    counts.errors += done.errors  # a discovery that failed, a download that raised
    counts.failed += len(done.errors)
    days = gone_recheck_after(source).total_seconds() / 86400
    counts.add_fetches(done.fetches, gone_note=f"; gone: re-checked after {days:g} days")
    counts.warnings += caps_that_bit(done.fetches)


def _count_discovery(counts: SourceCounts, plan: SourcePlan) -> None:
    """What discovery of one source adds to the summary."""
    counts.discovered = len(plan.discovery.links)
    counts.failed += len(plan.listing_failures)
    counts.errors += plan.listing_failures
    counts.warnings += plan.warnings
    counts.discovery = describe_plan(plan)
    counts.gone = len(plan.gone)
    counts.gone_links += [f"{link.url}: {link.reason or 'gone'}; re-checked from "
                          f"{link.next_attempt_at:%Y-%m-%d}" for link in plan.gone if link.next_attempt_at]  # fmt: skip


def load_archived(fetches: Callable[[], Iterable[ArchivedFetch]], archive: RawArchive, warehouse_path: str,
                  sources: dict[str, Source], summary: RunSummary, batch_size: int, parameters: dict,
                  status: str = "completed", extract_on: ExtractOn = ExtractOn()) -> None:  # fmt: skip
    """Extract archived pages batch by batch, in this process or on a Dask cluster
    (`extract_on`, flows/cluster.py), and load them here as they come, in load transactions
    of many batches (tasks/steps.py: BatchLoader); then record the run, check quality and
    publish the analysts' snapshot (every run: it carries the runs ledger too).

    `fetches` is called once the warehouse is open and the archive's loaded marks agree with
    it (module docstring). `status` is what the run is if this goes through: the crawl's
    verdict (completed | partial | failed). Opens the warehouse once (waiting up to
    WAREHOUSE_LOCK_TIMEOUT for a lock held by another process); raises WarehouseLockedError
    if it stays locked, and DiskFull, once the run is recorded as failed (when the disk
    still allows that), if a write finds the disk full.
    """
    summary.timings.setdefault("extract", 0.0)
    summary.timings.setdefault("load", 0.0)
    con = _open_and_start(warehouse_path, summary, parameters)
    try:
        _forget_loads_unknown_to(con, archive, summary)
        chunks = batches(list(fetches()), batch_size)
        wrote = _extract_and_load(con, archive, chunks, sources, summary, extract_on) if chunks else False
        _finalise(con, archive, summary, wrote, status)
    except ExtractFailed as exc:  # the cluster unreachable or gone (flows/cluster.py): the run is recorded failed
        summary.status, summary.message = "failed", str(exc)
        with ledger_write():
            finish_run(con, summary.run_id, status="failed", counts=run_counts(summary),
                       sources=source_counts(summary), message=str(exc), timings=summary.timings)  # fmt: skip
        raise
    except (OSError, sqlite3.Error, duckdb.Error) as exc:
        _fail_if_disk_full(exc, con, summary)
        raise
    finally:
        con.close()
    with timed(summary, "finalise"), timed(summary, "finalise.snapshot"):
        try:
            snapshot(warehouse_path, wrote=wrote)  # a lake: its maintenance, after a run that wrote
        except (OSError, duckdb.Error) as exc:
            if disk_full_reason(exc) is None:
                raise
            with connect(warehouse_path) as again:
                _fail_if_disk_full(exc, again, summary)


def _extract_and_load(con: duckdb.DuckDBPyConnection, archive: RawArchive, chunks: list[list[ArchivedFetch]],
                      sources: dict[str, Source], summary: RunSummary, extract_on: ExtractOn) -> bool:  # fmt: skip
    """Extract the batches, load each as its result comes (in order), commit the last load
    transaction and write the staged data to the main file (checkpoint); whether any data
    table changed. Stage seconds: `load` is this process's loading; `extract` is the batches'
    own extraction in this process, or on a cluster the time spent waiting for them
    (`extract.workers`: the workers' seconds, added up)."""
    loader = BatchLoader(con, archive, summary.run_id, sources)
    wrote, notes = False, []
    on_cluster = not extract_on.in_process
    try:
        with extractor(extract_on) as extracting:
            results = extracting.run(chunks, archive, sources)
            while True:
                waited = time.perf_counter()
                done = next(results, None)
                if done is None:
                    break
                summary.timings["extract"] += time.perf_counter() - waited if on_cluster else done.seconds
                if on_cluster:
                    summary.timings["extract.workers"] = summary.timings.get("extract.workers", 0.0) + done.seconds
                notes += done.notes
                with timed(summary, "load"):
                    wrote |= _count_loads(summary, loader.add(done.fetches, done.pages))
                del done
        with timed(summary, "load"):
            wrote |= _count_loads(summary, loader.finish())
            if wrote:
                loader.checkpoint()
    finally:
        loader.discard()  # a stop or a failure: what is staged and not committed stays in the archive
    report_extractors(notes)
    return wrote


def _count_loads(summary: RunSummary, outcomes: list[LoadOutcome]) -> bool:
    """Add a committed transaction's outcomes to the summary; whether it wrote data."""
    for outcome in outcomes:
        summary.counts(outcome.source).add_loads([outcome])
    return any(o.status != "unchanged" or o.reason == "reextracted" for o in outcomes)


def _finalise(con: duckdb.DuckDBPyConnection, archive: RawArchive, summary: RunSummary, wrote: bool,
              status: str) -> None:  # fmt: skip
    """Copy the fetch log, check quality when data changed, and close the run as `status`."""
    summary.timings.setdefault("finalise", 0.0)  # from here on, a stop says "during finalise"
    with timed(summary, "finalise"):
        with timed(summary, "finalise.fetch_log"):  # this run's, and any an earlier run left
            newest = con.execute("select max(fetch_id) from fetch_log").fetchone()
            record_fetch_log(con, archive.fetch_log_after(newest[0] if newest else None))
        for note in history_notes(con, summary.started_at):  # gone, superseded, conflicts found this run
            add_note(summary, note)
        if wrote:  # the checks read the whole warehouse: pointless when no data table changed
            with timed(summary, "finalise.checks"):
                summary.checks = [vars(c) for c in run_checks(con, summary.run_id)]
        with ledger_write():
            finish_run(con, summary.run_id, status=status, counts=run_counts(summary),
                       sources=source_counts(summary), message=summary.message, timings=summary.timings)  # fmt: skip
        summary.status = status


def _open_and_start(warehouse_path: str, summary: RunSummary, parameters: dict) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (creating and migrating it if need be) and record the run as
    running, as one step of the run ledger: a stop that begins meanwhile records the run
    only after both (flows/interrupt.py), never on a half-created file."""
    with ledger_write():
        con = connect(warehouse_path)
        try:
            start_run(con, summary.run_id, flow_run_id=parameters.get("flow_run_id"), parameters=parameters,
                      started_at=summary.started_at)  # fmt: skip
        except BaseException:
            con.close()
            raise
    return con


def _forget_loads_unknown_to(con: duckdb.DuckDBPyConnection, archive: RawArchive, summary: RunSummary) -> None:
    """Unmark archived pages loaded by runs this warehouse has no record of, and say so."""
    # The archive's marks first: a run that marks pages meanwhile (on a lake, runs of other
    # sources load side by side) recorded itself before, so the runs read next know it.
    loaded = archive.loaded_run_ids()
    known = {run_id for (run_id,) in con.execute("select run_id from runs").fetchall()}
    unknown = loaded - known
    if unknown:
        pages = archive.forget_loads(unknown)
        add_note(summary, f"the warehouse has no record of the {len(unknown)} run(s) that loaded {pages} archived "
                          "fetch(es) (it is new, or was replaced or restored from before them): they are loaded again")  # fmt: skip


def _fail_if_disk_full(exc: BaseException, con: duckdb.DuckDBPyConnection, summary: RunSummary) -> None:
    """If `exc` is a full disk: record the run as failed with that reason (if the disk lets
    a few more bytes through) and raise DiskFull. Otherwise return."""
    reason = disk_full_reason(exc)
    if reason is None:
        return
    summary.status, summary.message = "failed", reason
    try:
        with ledger_write():
            finish_run(con, summary.run_id, status="failed", counts=run_counts(summary),
                       sources=source_counts(summary), message=reason, timings=summary.timings)  # fmt: skip
    except duckdb.Error as again:
        log.warning("the run could not be recorded as failed either (%s); the next run closes it", again)
    raise DiskFull(reason) from None


@contextmanager
def timed(summary: RunSummary, stage: str) -> Iterator[None]:
    """Add the block's seconds to summary.timings[stage], even when it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        summary.timings[stage] = summary.timings.get(stage, 0.0) + time.perf_counter() - started


def run_counts(summary: RunSummary) -> dict[str, int]:
    """The run's totals, as `runs` stores them."""
    return _counts(summary.total())


def source_counts(summary: RunSummary) -> dict[str, dict]:
    """Counts and first errors per source, as `run_sources` stores them."""
    return {name: _counts(c) | {"error": "; ".join(c.errors[:5]) or None} for name, c in list(summary.sources.items())}


def _counts(counts: SourceCounts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in RUN_COUNTS}
