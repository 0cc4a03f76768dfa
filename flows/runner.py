"""What both flows share around the pipeline: run ids, the run's verdict and final state,
publishing the summary, and the command-line end (checks before the run, exit status).

A run ends in one of these states, the same in `runs`, the summary, the Prefect artifacts
and the Prefect state (and the exit status of `python -m flows.…`):

| state       | when                                                               | Prefect   | exit |
|-------------|--------------------------------------------------------------------|-----------|------|
| completed   | every source was read (a page may still have failed: summary)      | Completed | 0    |
| partial     | some sources failed (nothing of them could be read); the rest loaded | Completed, message "partial: …" | 0 |
| failed      | every source failed, nothing could be discovered, or the run could not finish (lock, damaged archive, disk full …) | Failed | 1 |
| interrupted | SIGINT or SIGTERM (flows/interrupt.py)                             | Cancelled | 128 + signal |

A configuration error stops a command-line run before it starts: one line, exit 2.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.runtime import flow_run
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings
from prefect.states import Cancelled, Completed, Failed, State

from flows import interrupt
from tasks import settings
from tasks.crawl import archive as raw_archive
from tasks.crawl.archive import ArchiveError, ArchiveLocation
from tasks.crawl.runlock import RunInterrupted, RunLockedError
from tasks.extract.compiled import stale_build_note
from tasks.sources import SourceConfigError, read_sources, select_sources
from tasks.summary import RunSummary, SourceCounts, artifact_rows, format_summary, summary_markdown
from warehouse import WarehouseDamaged, WarehouseFormatError, WarehouseLockedError
from warehouse.backend.connect import check_format
from warehouse.backend.lake import LakeError, is_lake
from warehouse.backend.rebuild import check_warehouse

log = logging.getLogger(__name__)

EXIT_FAILED, EXIT_CONFIG = 1, 2


class RunFailed(RuntimeError):
    """The run could not complete; the message says why and what happens to fetched pages."""


class DiskFull(RunFailed):
    """A write was refused for want of disk space; the message names the file."""


# Failures an operator can act on: their message is the run's, with no traceback.
_EXPECTED = (RunFailed, RunLockedError, WarehouseLockedError, WarehouseFormatError, WarehouseDamaged,
             ArchiveError, SourceConfigError, LakeError)  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """How the crawl went, as a run state: completed | partial | failed, and why."""

    status: str
    message: str | None = None


def crawl_verdict(summary: RunSummary, names: Iterable[str]) -> Verdict:
    """Judge a crawl by its sources. A source failed when nothing of it could be read: its
    listing pages (or its discovery) failed and no page of it was fetched or confirmed. A
    source whose listing was read is not failed, even with failed pages (they are counted).
    Every source failed, or no article link found anywhere: failed. Some failed: partial."""
    names = list(names)
    if not names:
        return Verdict("completed")
    counts = [summary.counts(name) for name in names]
    failed = [c for c in counts if _source_failed(c)]
    if len(failed) == len(names):
        return Verdict("failed", f"every source failed: {_reasons(failed)}")
    if all(c.discovered == 0 and c.fetched + c.not_modified == 0 for c in counts):
        return Verdict("failed", "nothing could be discovered: no source's listing yields an article link"
                                 + (f"; {_reasons(failed)}" if failed else ""))  # fmt: skip
    if failed:
        return Verdict("partial", f"{len(failed)} of {len(names)} sources failed: {_reasons(failed)}")
    return Verdict("completed")


def _source_failed(counts: SourceCounts) -> bool:
    return counts.discovered == 0 and counts.fetched + counts.not_modified == 0 and counts.failed > 0


def _reasons(failed: list[SourceCounts]) -> str:
    return "; ".join(f"{c.source} ({c.errors[0] if c.errors else 'no reason recorded'})" for c in failed)


def disk_full_reason(exc: BaseException) -> str | None:
    """The sentence a disk-full error deserves, if `exc` is one: an OSError ENOSPC (the
    snapshot's copy), SQLite's SQLITE_FULL (the archive), DuckDB's "No space left on device"
    (the warehouse). None for anything else."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if exc.filename else ""
    elif isinstance(exc, sqlite3.OperationalError) and getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
        where = " writing the raw archive"
    elif isinstance(exc, duckdb.Error) and ("No space left on device" in text or "disk is full" in text.lower()):
        where = " writing the warehouse"
    else:
        return None
    return (f"disk full{where}: {text.splitlines()[0] if text else exc!r}. Nothing committed is lost (pages fetched "
            "are in the raw archive, loaded batches are whole); free some space and run again")  # fmt: skip


@dataclass
class ActiveRun:
    """The run in progress in this process: what a stop request needs to record it."""

    summary: RunSummary
    what: str  # "nightly run" | "reprocessing"
    warehouse_path: Path
    archive_path: ArchiveLocation  # a SQLite file or a PostgreSQL schema (str() names it, without a password)
    parameters: dict
    stage: str = "start"  # start | crawl | load: where the run is (flows/interrupt.py words it)


class _NoTracebackForFullDisk(logging.Filter):
    """Prefect logs a failed task with its traceback; a full disk is no bug, and its one
    line (the run's message) says all there is to say."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and disk_full_reason(record.exc_info[1]):
            record.exc_info, record.exc_text = None, None
        return True


_FULL_DISK_FILTER = _NoTracebackForFullDisk()


@contextmanager
def reported_run(summary: RunSummary, what: str, warehouse_path: str, archive: ArchiveLocation,
                 parameters: dict) -> Iterator[ActiveRun]:  # fmt: skip
    """Run the block as the run, publish the summary however it ends, and set its status.

    Expected operational failures (a lock, a damaged archive, a configuration error, a full
    disk, a warehouse in another DuckDB's format) become the run's `failed` status and
    message, with no traceback; anything else propagates as the error it is. A stop
    request on the command line ends the process from flows/interrupt.py instead.
    """
    started = time.perf_counter()
    run = ActiveRun(summary, what, Path(warehouse_path), archive, parameters)
    interrupt.watch(run)
    task_log = logging.getLogger("prefect.task_runs")
    task_log.addFilter(_FULL_DISK_FILTER)
    try:
        yield run
    except _EXPECTED as exc:
        summary.status, summary.message = "failed", str(exc)
    except RunInterrupted as exc:
        summary.status, summary.message = "interrupted", str(exc)
    except (OSError, sqlite3.Error, duckdb.Error) as exc:
        reason = disk_full_reason(exc)
        if reason is None:
            raise
        summary.status, summary.message = "failed", reason
    finally:
        interrupt.park()  # a stop has begun: the stopping thread records and ends the run
        interrupt.unwatch(run)
        task_log.removeFilter(_FULL_DISK_FILTER)
        if summary.status == "running":
            summary.status = "failed"
        publish(summary, started)


def final_state(summary: RunSummary) -> State:
    """The Prefect state a run ends in (see the module docstring), returned by the flow so
    that an expected failure carries its message without a traceback."""
    rows = summary.rows()
    if summary.status == "completed":
        return Completed(data=rows, message=summary.message)
    if summary.status == "partial":
        return Completed(data=rows, message=f"partial: {summary.message}")
    if summary.status == "interrupted":
        return Cancelled(message=summary.message or "interrupted")
    return Failed(message=summary.message or "the run did not complete")


def add_note(summary: RunSummary, note: str) -> None:
    """A line the operator must see whatever the outcome (a new warehouse …): logged, and
    kept in the run's message (summary, `runs.message`, artifacts)."""
    log.warning(note)
    summary.message = f"{summary.message}; {note}" if summary.message else note


def new_files_note(warehouse_path: str, archive: ArchiveLocation) -> str | None:
    """One line when this run is about to create the warehouse or the archive: a path with
    a typo would otherwise silently start an empty warehouse and crawl everything again."""
    # A lake has no file to look for (its first run says so in the log when it creates it).
    warehouse = [] if is_lake(warehouse_path) else [("warehouse", Path(warehouse_path))]
    new = [f"{label} {path}" for label, path in (*warehouse, ("raw archive", archive))
           if not path.exists()]  # fmt: skip
    if not new:
        return None
    return f"new {' and new '.join(new)} created by this run (no file was there: check the path if one was expected)"


def run_from_cli(flow: Callable, what: str, preflight: Callable[[], None] | None = None,
                 **parameters: object) -> int:  # fmt: skip
    """Run a flow for the command line; return its exit status (see the module docstring).

    `preflight` checks what can be checked before Prefect starts (configuration, archive);
    its SourceConfigError exits 2 and any other expected failure 1, in one line. A warehouse
    in another DuckDB's storage format is such a failure too. While the flow runs, SIGINT
    and SIGTERM end it as flows/interrupt.py says, and a temporary Prefect server (when
    PREFECT_API_URL is unset) is this process's child, in a session of its own.
    """
    try:
        check_format(str(parameters.get("warehouse_path") or settings.WAREHOUSE))
        if preflight is not None:
            preflight()
    except SourceConfigError as exc:
        print(f"{what} not started: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except _EXPECTED as exc:
        print(f"{what} failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    with interrupt.stop_on_signals(what), _cli_settings(), interrupt.temporary_api():
        state = flow(**parameters, return_state=True)
        interrupt.park()
        drain_run_records(state.state_details.flow_run_id)
    if state.is_completed():
        if state.message:
            print(f"{what} {state.message}", file=sys.stderr)
        return 0
    print(f"{what} failed: {state.message}", file=sys.stderr)
    return EXIT_FAILED


def check_inputs(sources_file: str, only: list[str] | None, warehouse_path: str, archive: str | None) -> None:
    """The preflight of a nightly run: the sources file reads, `--only` names sources it
    has, the archive (reachable, if on PostgreSQL) and the warehouse (if there are any) are sound."""
    select_sources(read_sources(sources_file), only, where=sources_file)
    raw_archive.check(archive_location(archive, warehouse_path))
    check_warehouse(warehouse_path, archive_dir=raw_archive.shown_setting(archive))


@contextmanager
def _cli_settings() -> Iterator[None]:
    """Prefect settings for a run started from the command line.

    Flow-run heartbeats are off unless PREFECT_FLOWS_HEARTBEAT_FREQUENCY is configured (in
    the environment or the Prefect profile): they only serve a server-side automation that
    marks silent runs crashed, and a command-line run is supervised by whatever started it
    (its exit status). The heartbeat thread wakes once a second, so the engine's join at
    the end costs up to a second on every run, about a quarter of a no-op run. Deployment
    runs (prefect.yaml) keep Prefect's default.
    """
    if "heartbeat_frequency" in get_current_settings().flows.model_fields_set:
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def new_summary() -> RunSummary:
    started = datetime.now(UTC)
    return RunSummary(run_id=f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}", started_at=started)


def archive_location(archive: str | None, warehouse_path: str) -> ArchiveLocation:
    """The raw archive `archive` names (a directory, or postgres:<libpq dsn>); unset, the one
    GOVETL_ARCHIVE names, else archive/archive.sqlite beside the warehouse (a lake, which is
    beside nothing: GOVETL_ARCHIVE_DIR's, data/archive/ by default)."""
    beside = settings.ARCHIVE_DIR if is_lake(warehouse_path) else Path(warehouse_path).parent / "archive"
    return raw_archive.locate(archive, beside)


def current_flow_run_id() -> str | None:
    return str(flow_run.id) if flow_run.id else None


def publish(summary: RunSummary, started: float) -> None:
    """Log the summary table and keep it as Prefect artifacts (versioned by key across runs)."""
    summary.finished_at = datetime.now(UTC)
    summary.timings["total"] = time.perf_counter() - started
    get_run_logger().info("run summary\n%s", format_summary(summary))
    if note := stale_build_note():
        get_run_logger().info(note)
    create_table_artifact(key="etl-run-summary", table=artifact_rows(summary),
                          description=f"Run {summary.run_id}: {summary.status}")  # fmt: skip
    create_markdown_artifact(key="etl-run-report", markdown=report_markdown(summary),
                             description=f"Run {summary.run_id}: {summary.status}")  # fmt: skip


def report_markdown(summary: RunSummary) -> str:
    """The run-report artifact: the summary's markdown, and the data-quality checks that did
    not pass (the terminal summary lists them too): every failure's reason in one place."""
    failing = [c for c in summary.checks or [] if c.get("status") != "pass"]
    checks = [f"- {c['status']}: {c['check_name']}: {c.get('detail')}" for c in failing]
    return summary_markdown(summary) + (f"\n\n## Data-quality checks not passing ({len(checks)})\n" + "\n".join(checks)
                                        if checks else "")  # fmt: skip


def drain_run_records(flow_run_id: uuid.UUID | None, timeout: float = 10.0) -> None:
    """Wait until the API has recorded every task run of the flow run as finished.

    Task run states reach a Prefect server as events; a temporary server stopped while
    it is still writing them logs tracebacks on shutdown. Bounded, best effort; a
    dedicated server (PREFECT_API_URL set) outlives the run and needs no wait.
    """
    if not flow_run_id or not interrupt.owns_api_server():
        return
    try:
        asyncio.run(_drain(flow_run_id, timeout))
    except Exception as exc:  # the run itself is over; a slow API must not turn it into a failure
        log.debug("could not confirm task run records: %s", exc)


async def _drain(flow_run_id: uuid.UUID, timeout: float) -> None:
    deadline, previous = time.monotonic() + timeout, -1
    async with get_client() as client:
        while time.monotonic() < deadline:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            finished = sum(1 for r in runs if r.state and r.state.is_final())
            if finished == len(runs) == previous:
                return
            previous = finished if finished == len(runs) else -1
            await asyncio.sleep(0.2)
