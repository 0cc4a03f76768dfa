"""What both flows share around the pipeline: run ids, publishing the summary, the CLI end."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.runtime import flow_run
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

from tasks.extract.compiled import stale_build_note
from tasks.crawl.runlock import RunLockedError
from tasks.summary import RunSummary, format_summary, summary_markdown
from warehouse import WarehouseLockedError

log = logging.getLogger(__name__)


class RunFailed(RuntimeError):
    """The run could not complete; the message says why and what happens to fetched pages."""


@contextmanager
def reported_run(summary: RunSummary) -> Iterator[None]:
    """Publish the summary however the run ends; fail the flow when it did not complete.

    A locked run or warehouse is an expected operational failure: its message goes to the
    summary, not a traceback. Anything else propagates as the error it is.
    """
    started = time.perf_counter()
    try:
        yield
    except (RunLockedError, WarehouseLockedError) as exc:
        summary.status, summary.message = "failed", str(exc)
    finally:
        if summary.status == "running":
            summary.status = "failed"
        publish(summary, started)
    if summary.status != "completed":
        raise RunFailed(summary.message or "the run did not complete")


def run_from_cli(flow: Callable, what: str, **parameters: object) -> int:
    """Run a flow for the command line: exit status 0 when it completed, 1 otherwise."""
    with _cli_settings():
        state = flow(**parameters, return_state=True)
    drain_run_records(state.state_details.flow_run_id)
    if not state.is_completed():
        print(f"{what} failed: {state.message}", file=sys.stderr)
        return 1
    return 0


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


def archive_path(archive_dir: str | None, warehouse_path: str) -> Path:
    """The raw archive lives beside the warehouse unless told otherwise."""
    directory = Path(archive_dir) if archive_dir else Path(warehouse_path).parent / "archive"
    return directory / "archive.sqlite"


def current_flow_run_id() -> str | None:
    return str(flow_run.id) if flow_run.id else None


def publish(summary: RunSummary, started: float) -> None:
    """Log the summary table and keep it as Prefect artifacts (versioned by key across runs)."""
    summary.finished_at = datetime.now(UTC)
    summary.timings["total"] = time.perf_counter() - started
    get_run_logger().info("run summary\n%s", format_summary(summary))
    if note := stale_build_note():
        get_run_logger().info(note)
    create_table_artifact(key="etl-run-summary", table=summary.rows(),
                          description=f"Run {summary.run_id}: {summary.status}")  # fmt: skip
    create_markdown_artifact(key="etl-run-report", markdown=summary_markdown(summary),
                             description=f"Run {summary.run_id}")  # fmt: skip


def drain_run_records(flow_run_id: uuid.UUID | None, timeout: float = 10.0) -> None:
    """Wait until the API has recorded every task run of the flow run as finished.

    Task run states reach a Prefect server as events; a temporary server stopped while
    it is still writing them logs tracebacks on shutdown. Bounded, best effort; a
    dedicated server (PREFECT_API_URL set) outlives the run and needs no wait.
    """
    if not flow_run_id or os.environ.get("PREFECT_API_URL"):
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
