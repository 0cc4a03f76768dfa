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
from prefect.futures import wait

from flows.interrupt import ledger_write
from flows.runner import DiskFull, add_note, disk_full_reason
from tasks.crawl.archive import ArchivedFetch, RawArchive
from tasks.crawl.fetch import Fetcher, caps_that_bit
from tasks.records import FetchResult, Source
from tasks.steps import (SourcePlan, batches, describe_plan, discover_source, extract_load_batch, fetch_batch,
                         gone_recheck_after)  # fmt: skip
from tasks.summary import RunSummary, SourceCounts
from warehouse import connect, finish_run, record_fetch_log, run_checks, snapshot, start_run
from warehouse.history import history_notes
from warehouse.runs import RUN_COUNTS

log = logging.getLogger(__name__)


def crawl(sources: list[Source], archive: RawArchive, summary: RunSummary, revalidate_after_hours: float,
          batch_size: int) -> None:  # fmt: skip
    """Discover every source concurrently, then fetch the planned pages in batches.

    Discovery records every link in the archive's frontier before anything is fetched, so
    an interrupted or failed run leaves its unfinished links for the next one.
    """
    with ExitStack() as stack:
        fetchers = {s.name: stack.enter_context(Fetcher(s)) for s in sources}
        started = time.perf_counter()
        discovered = {s.name: discover_source.submit(s, fetchers[s.name], archive, summary.run_id,
                                                     revalidate_after_hours) for s in sources}  # fmt: skip
        fetch_futures = []
        for source in sources:
            counts, future = summary.counts(source.name), discovered[source.name]
            future.wait()
            if not future.state.is_completed():  # one dead source never fails the run
                counts.errors.append(f"discovery failed: {future.state.message}")
                counts.failed += 1
                continue
            plan = future.result().value
            _count_discovery(counts, plan)
            for number, items in enumerate(batches(plan.fetches, batch_size)):
                fetch_futures.append((source, fetch_batch.submit(source, fetchers[source.name], archive,
                                                                 summary.run_id, items, number)))  # fmt: skip
        summary.timings["discover"] = time.perf_counter() - started
        started = time.perf_counter()
        wait([batch for _, batch in fetch_futures])
        results: dict[str, list[FetchResult]] = {}
        for source, batch in fetch_futures:
            if batch.state.is_completed():
                days = gone_recheck_after(source).total_seconds() / 86400
                summary.counts(source.name).add_fetches(batch.result().value,
                                                        gone_note=f"; gone: re-checked after {days:g} days")  # fmt: skip
                results.setdefault(source.name, []).extend(batch.result().value)
            else:
                summary.counts(source.name).errors.append(f"fetch batch failed: {batch.state.message}")
        for name, fetched in results.items():
            summary.counts(name).warnings += caps_that_bit(fetched)
        summary.timings["fetch"] = time.perf_counter() - started


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
                  status: str = "completed") -> None:  # fmt: skip
    """Extract and load archived pages batch by batch, then record the run, check quality and
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
        wrote = False
        for number, chunk in enumerate(batches(list(fetches()), batch_size)):
            done = extract_load_batch(con, archive, summary.run_id, chunk, sources, number)
            for stage, seconds in done.stages.items():
                summary.timings[stage] += seconds
            for outcome in done.value:
                summary.counts(outcome.source).add_loads([outcome])
                wrote = wrote or outcome.status != "unchanged" or outcome.reason == "reextracted"
        _finalise(con, archive, summary, wrote, status)
    except (OSError, sqlite3.Error, duckdb.Error) as exc:
        _fail_if_disk_full(exc, con, summary)
        raise
    finally:
        con.close()
    with timed(summary, "finalise"), timed(summary, "finalise.snapshot"):
        try:
            snapshot(warehouse_path)
        except (OSError, duckdb.Error) as exc:
            if disk_full_reason(exc) is None:
                raise
            with connect(warehouse_path) as again:
                _fail_if_disk_full(exc, again, summary)


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
    known = {run_id for (run_id,) in con.execute("select run_id from runs").fetchall()}
    unknown = archive.loaded_run_ids() - known
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
