"""The two halves of a run, shared by the nightly and reprocess flows.

`crawl` (discover + fetch into the raw archive) needs no warehouse; `load_archived`
(extract + load) needs the DuckDB file. Keeping them apart is what lets a run whose
warehouse is locked by an analyst keep everything it fetched: the next run's
`load_archived` picks it up from the archive.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager

from prefect.futures import wait

from tasks.crawl.archive import ArchivedFetch, RawArchive
from tasks.crawl.fetch import Fetcher
from tasks.records import Source
from tasks.steps import batches, discover_source, extract_load_batch, fetch_batch
from tasks.summary import RunSummary, SourceCounts
from warehouse import connect, finish_run, record_fetch_log, run_checks, snapshot, snapshot_path, start_run
from warehouse.runs import RUN_COUNTS

log = logging.getLogger(__name__)


def crawl(sources: list[Source], archive: RawArchive, summary: RunSummary, revalidate_after_hours: float,
          batch_size: int) -> None:  # fmt: skip
    """Discover every source concurrently, then fetch the planned pages in batches."""
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
            timed = future.result()
            discovery, plan = timed.value
            counts.discovered = len(discovery.links)
            counts.failed += len(timed.notes)
            counts.errors += timed.notes
            for number, items in enumerate(batches(plan, batch_size)):
                fetch_futures.append((source, fetch_batch.submit(source, fetchers[source.name], archive,
                                                                 summary.run_id, items, number)))  # fmt: skip
        summary.timings["discover"] = time.perf_counter() - started
        started = time.perf_counter()
        wait([batch for _, batch in fetch_futures])
        for source, batch in fetch_futures:
            if batch.state.is_completed():
                summary.counts(source.name).add_fetches(batch.result().value)
            else:
                summary.counts(source.name).errors.append(f"fetch batch failed: {batch.state.message}")
        summary.timings["fetch"] = time.perf_counter() - started


def load_archived(fetches: Iterable[ArchivedFetch], archive: RawArchive, warehouse_path: str,
                  sources: dict[str, Source], summary: RunSummary, batch_size: int,
                  parameters: dict) -> None:  # fmt: skip
    """Extract and load archived pages batch by batch, then record the run and check quality.

    Opens the warehouse once (waiting up to WAREHOUSE_LOCK_TIMEOUT for a lock held by
    another process); raises WarehouseLockedError if it stays locked.
    """
    summary.timings.setdefault("extract", 0.0)
    summary.timings.setdefault("load", 0.0)
    con = connect(warehouse_path)
    try:
        start_run(con, summary.run_id, flow_run_id=parameters.get("flow_run_id"), parameters=parameters,
                  started_at=summary.started_at)  # fmt: skip
        run_ids: set[str] = set()
        wrote = False
        for number, chunk in enumerate(batches(list(fetches), batch_size)):
            done = extract_load_batch(con, archive, summary.run_id, chunk, sources, number)
            for stage, seconds in done.stages.items():
                summary.timings[stage] += seconds
            for outcome in done.value:
                summary.counts(outcome.source).add_loads([outcome])
                wrote = wrote or outcome.status != "unchanged" or outcome.reason == "reextracted"
            run_ids.update(f.run_id for f in chunk)
        with timed(summary, "finalise"):
            with timed(summary, "finalise.fetch_log"):
                for run_id in sorted(run_ids | {summary.run_id}):  # also logs of runs whose load failed
                    record_fetch_log(con, archive.fetch_log(run_id), run_id=run_id)
            if wrote:  # the checks read the whole warehouse: pointless when no data table changed
                with timed(summary, "finalise.checks"):
                    summary.checks = [vars(c) for c in run_checks(con, summary.run_id)]
            summary.status = "completed"
            finish_run(con, summary.run_id, status="completed", counts=_counts(summary.total()),
                       sources=_source_counts(summary), message=summary.message,
                       timings=summary.timings)  # fmt: skip
    finally:
        con.close()
    if wrote or not snapshot_path(warehouse_path).exists():  # the analysts' copy only changes with the data
        with timed(summary, "finalise"), timed(summary, "finalise.snapshot"):
            snapshot(warehouse_path)


@contextmanager
def timed(summary: RunSummary, stage: str) -> Iterator[None]:
    """Add the block's seconds to summary.timings[stage], even when it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        summary.timings[stage] = summary.timings.get(stage, 0.0) + time.perf_counter() - started


def _counts(counts: SourceCounts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in RUN_COUNTS}


def _source_counts(summary: RunSummary) -> dict[str, dict]:
    return {name: _counts(c) | {"error": "; ".join(c.errors[:5]) or None} for name, c in summary.sources.items()}
