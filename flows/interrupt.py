"""How a command-line run ends on SIGINT or SIGTERM: within seconds, in one line, recorded,
and with no child process left behind.

Everything a run writes is whole at any instant (a fetch is one SQLite transaction, a load
batch one DuckDB transaction, the archive's loaded marks follow the warehouse's commits), so
stopping needs no cooperation from the pipeline: the process records the stop and exits.
`stop_on_signals` has both signals reported to a thread of its own (through Python's
wakeup file descriptor), so that neither a KeyboardInterrupt nor Prefect's SIGTERM bridge
ever lands in the middle of Prefect's engine or a DuckDB call. On the first signal:

1. every later fetch raises RunInterrupted (tasks/crawl/runlock.py), so nothing seen while
   stopping is recorded as a page's outcome; log output stops (the line below is the
   operator's);
2. the raw archive is read (on a connection of its own) for what was kept: pages fetched
   and loaded by this run, pages archived and not loaded, links still pending;
3. the run is recorded as `interrupted` in the warehouse's `runs`, with that line (on a
   connection of its own, whatever the pipeline was doing: the pipeline's open transaction,
   if any, is discarded at exit like a crash's; a first run creates the warehouse for it);
4. the Prefect flow run is set Cancelled with the same message, its run report attached;
5. the temporary Prefect server, if this process started one, is killed, and so are the
   run's local Dask workers, if it has some (flows/cluster.py; they ignore the SIGINT a
   terminal sends its whole process group, so that none prints a traceback of its own);
6. the line goes to stderr and the process exits with 128 + the signal's number.

Each step is bounded (STEP_TIMEOUT); a second signal exits at once. The pipeline goes on
meanwhile (its writes are whole whenever the process ends), except that it no longer
writes its row in `runs` (`ledger_write`), publishes a summary or returns (`park`). The next run closes
nothing by hand: it fetches the pending links first and loads what is archived and not
loaded (see the frontier in tasks/crawl/archive/).

The temporary Prefect server (PREFECT_API_URL unset) is started here, as Prefect would,
but in a session of its own: a terminal's Ctrl-C goes to the process group in the
foreground, and a server that receives it stops in the middle of the run's last API calls
(which then retry for minutes, printing connection errors). The kernel kills it when the
run's process dies, however it dies (PR_SET_PDEATHSIG on Linux), so not even a kill -9
leaves it running.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from tasks.crawl.archive import ArchiveProgress, archive_progress
from tasks.crawl.runlock import request_stop, stop_requested
from tasks.summary import summary_markdown

if TYPE_CHECKING:
    from flows.runner import ActiveRun

log = logging.getLogger(__name__)
T = TypeVar("T")

STEP_TIMEOUT = 3.0  # seconds one step of stopping may take (recording the run, telling Prefect)
_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
_state_lock = threading.Lock()
_active: ActiveRun | None = None  # the run in progress in this process, if any
_server: Any = None  # the temporary Prefect server this process started, if any
_workers: set[int] = set()  # local Dask worker processes of the run (flows/cluster.py)


def watch(run: ActiveRun) -> None:
    """`run` is in progress: a stop request records it."""
    global _active
    with _state_lock:
        _active = run


def unwatch(run: ActiveRun) -> None:
    global _active
    with _state_lock:
        if _active is run:
            _active = None


_LEDGER = threading.Lock()  # held while the warehouse is opened and the run's row in `runs` written


@contextmanager
def ledger_write() -> Iterator[None]:
    """Hold while the pipeline writes the run's row in `runs`. Once a stop has begun, the
    stopping thread alone writes it: the pipeline's thread stays here until the process
    ends (park), so that it neither overwrites `interrupted` nor races the stopper's insert."""
    _LEDGER.acquire()
    if stop_requested():
        _LEDGER.release()
        park()
    try:
        yield
    finally:
        _LEDGER.release()


def park() -> None:
    """If a stop has begun, wait for it to end the process; otherwise return at once."""
    if stop_requested():
        threading.Event().wait()


def owns_api_server() -> bool:
    """Did this process start the Prefect API server it talks to?"""
    return _server is not None


def owned_api_url() -> str | None:
    """The API URL of the temporary server this process started, if any (its Dask workers,
    other processes, must be told where it is: flows/cluster.py)."""
    return getattr(_server, "api_url", None)


def adopt_workers(pids: set[int]) -> None:
    """Local Dask worker processes of the run: killed with the run's process when it stops.
    (They also exit by themselves when it dies, whatever kills it: distributed watches the parent.)"""
    with _state_lock:
        _workers.update(pids)


def forget_workers(pids: set[int]) -> None:
    with _state_lock:
        _workers.difference_update(pids)


@contextmanager
def stop_on_signals(what: str) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM stop the process as the module docstring says
    (`what` names the run in the line: "nightly run"). Only in the main thread; elsewhere
    signals keep their usual handling.

    Whichever thread the kernel hands a signal to (DuckDB starts one at import that blocks
    none), Python's C-level handler writes its number to the wakeup file descriptor, which a
    thread of ours waits on; the Python-level handlers, which would run in the main thread
    wherever it is (inside Prefect's engine, a DuckDB call …), only mute logging. Prefect's own
    SIGTERM bridge (capture_sigterm: a TerminationSignal raised in the main thread, for a
    runner cancelling a deployment's run) is left out of command-line runs for the same reason.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    import prefect.flow_engine as engine

    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    previous = {signum: signal.signal(signum, _leave_to_watcher) for signum in _SIGNALS}
    bridge, engine.capture_sigterm = engine.capture_sigterm, nullcontext  # type: ignore[assignment]
    done = threading.Event()
    watcher = threading.Thread(target=_wait_for_signals, args=(reader, done, what), name="govetl-signals",
                               daemon=True)  # fmt: skip
    watcher.start()
    try:
        yield
    finally:
        done.set()
        writer.send(b"\0")  # wake the watcher now rather than at its next 0.2 s poll
        watcher.join()
        engine.capture_sigterm = bridge  # type: ignore[assignment]
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        reader.close()
        writer.close()


def _leave_to_watcher(signum: int, frame: object) -> None:
    """The Python-level handler: the watcher thread has the signal already and does the
    stop. This only mutes logging at once, in case the main thread is running Python (where
    it would otherwise log a line or two before the watcher wakes); the locks it takes are
    reentrant, so it is safe wherever it interrupts the main thread."""
    _mute_logging()


def _wait_for_signals(reader: socket.socket, done: threading.Event, what: str) -> None:
    stopping = False
    while not done.is_set():
        if not select.select([reader], [], [], 0.2)[0]:
            continue
        for signum in reader.recv(64):
            if signum not in _SIGNALS:
                continue
            if stopping:  # a second signal: now
                os._exit(128 + signum)
            stopping = True
            _mute_logging()
            threading.Thread(target=_stop, args=(signum, what), name="govetl-stop", daemon=True).start()


def _mute_logging() -> None:
    """No more log output: the stop's line is the operator's. Every handler is raised above
    CRITICAL too, since Prefect's internal loggers ignore logging.disable."""
    logging.disable(logging.CRITICAL)
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    for logger in loggers:
        for handler in list(logger.handlers):
            handler.setLevel(logging.CRITICAL + 1)


def _stop(signum: int, what: str) -> NoReturn:
    request_stop()
    name = signal.Signals(signum).name
    try:
        with _state_lock:
            run = _active
        if run is None:
            line = f"{what} interrupted by {name} before its run began or after it ended: nothing to record"
        else:
            line = interruption_line(run, name, _bounded(lambda: archive_progress(run.archive_path,
                                                                                 run.summary.run_id)))  # fmt: skip
            recorded = _bounded(lambda: _record_holding_the_ledger(run, line))
            _bounded(lambda: _tell_prefect(run, line))
            line += f" {recorded or 'Not recorded in runs: the warehouse did not answer in time.'}"
        _kill_server()
        _kill_workers()
        os.write(2, (line + "\n").encode("utf-8", "replace"))
    finally:
        os._exit(128 + signum)


def interruption_line(run: ActiveRun, signal_name: str, kept: ArchiveProgress | None) -> str:
    """The operator's line: what was interrupted where, what was kept, what the next run does."""
    summary = run.summary
    head = f"{run.what} {summary.run_id} interrupted by {signal_name} during {stage_of(run)}"
    if kept is None:
        return f"{head}; nothing was archived."
    next_run = []
    if kept.unloaded:
        next_run.append(f"loads the {kept.unloaded} archived page(s) not loaded yet")
    if kept.pending_links or kept.pending_listings:
        listings = f" and {kept.pending_listings} listing page(s)" if kept.pending_listings else ""
        next_run.append(f"fetches the {kept.pending_links} link(s){listings} still pending first")
    plan = " and ".join(next_run) or "finds nothing left over and crawls as usual"
    return (f"{head}; kept: {kept.fetched_by_run} page(s) fetched by this run in the raw archive "
            f"({run.archive_path}), {kept.loaded_by_run} loaded into the warehouse; the next run {plan}.")  # fmt: skip


def stage_of(run: ActiveRun) -> str:
    """Where the run was, in an operator's words."""
    timings = run.summary.timings
    if run.stage == "crawl":  # a source's pages are fetched as soon as its own discovery is over
        return "fetch" if "discover" in timings else "discovery and fetch"
    if run.stage == "load":
        return "finalise" if "finalise" in timings else "extract and load"
    return "start-up"


def _record_holding_the_ledger(run: ActiveRun, message: str) -> str:
    with _LEDGER:
        return _record(run, message)


def _record(run: ActiveRun, message: str) -> str:
    """Close the run as interrupted in `runs` (opening it there if the load had not begun);
    what was done, as the end of the operator's line."""
    from flows.stages import run_counts, source_counts
    from warehouse import connect, finish_run, start_run

    summary = run.summary
    con = connect(run.warehouse_path, lock_timeout=1.0)
    try:
        row = con.execute("select status from runs where run_id = ?", [summary.run_id]).fetchone()
        if row is not None and row[0] != "running":
            return f"It had finished as {row[0]} in runs."
        if row is None:
            start_run(con, summary.run_id, flow_run_id=run.parameters.get("flow_run_id"), parameters=run.parameters,
                      started_at=summary.started_at)  # fmt: skip
        finish_run(con, summary.run_id, status="interrupted", counts=run_counts(summary),
                   sources=source_counts(summary), message=message, timings=dict(summary.timings))  # fmt: skip
        return "Recorded as interrupted in runs."
    finally:
        con.close()


def _tell_prefect(run: ActiveRun, message: str) -> None:
    """Cancel the flow run with the line, and leave its run report (status interrupted)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.states import Cancelled

    flow_run_id = run.parameters.get("flow_run_id")
    if not flow_run_id:
        return
    run.summary.status, run.summary.message = "interrupted", message
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Cancelled(message=message), force=True)
        client.create_artifact(ArtifactCreate(key="etl-run-report", type="markdown", flow_run_id=flow_run_id,
                                              data=summary_markdown(run.summary),
                                              description=f"Run {run.summary.run_id}: interrupted"))  # fmt: skip


def _bounded(step: Callable[[], T], timeout: float = STEP_TIMEOUT) -> T | None:
    """step(), or None if it fails or takes longer than `timeout` (it is then abandoned)."""
    outcome: list[T] = []

    def run() -> None:
        try:
            outcome.append(step())
        except Exception as exc:  # stopping goes on whatever one step does
            log.debug("stop step failed: %s", exc)

    worker = threading.Thread(target=run, name="govetl-stop-step", daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else None


# --- the temporary Prefect API server ------------------------------------------------------
@contextmanager
def temporary_api() -> Iterator[None]:
    """With PREFECT_API_URL unset, start Prefect's temporary API server for the block, in a
    session of its own, and stop it after; otherwise do nothing. Prefect's clients find it
    as they would find the one they start (SubprocessASGIServer is a per-port singleton)."""
    global _server
    from prefect.settings import PREFECT_API_URL, get_current_settings

    if PREFECT_API_URL.value() or not get_current_settings().server.ephemeral.enabled:
        yield
        return
    from prefect.server.api import server as prefect_server

    prefect_server.subprocess = _OwnSessionSubprocess()  # type: ignore[assignment]
    server = prefect_server.SubprocessASGIServer()
    server.start()
    _server = server
    try:
        yield
    finally:
        _server = None
        _send_pending_logs()
        server.stop()


def _send_pending_logs() -> None:
    """Send the run's last log lines to the temporary server before it stops: Prefect's log
    worker sends in batches, and one still queued when the server is gone is printed as
    "Error logging to API" at exit. Bounded (Prefect waits at most 5 s)."""
    from prefect.logging.handlers import APILogWorker

    try:
        APILogWorker.drain_all(timeout=5)
    except Exception as exc:  # the run is over; a log line that did not reach the UI is not a failure
        logging.getLogger(__name__).debug("could not send the last log lines: %s", exc)


class _OwnSessionSubprocess:
    """The `subprocess` module as Prefect's server module sees it: Popen starts the server
    in a new session, out of the terminal's foreground process group, and (on Linux) killed
    by the kernel when this process dies, even by kill -9."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 (subprocess's name)
        popen: Any = subprocess.Popen  # the overloads cannot be matched by forwarded arguments
        return popen(*args, start_new_session=True, preexec_fn=partial(_die_with_parent, os.getpid()), **kwargs)


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGKILL when the parent dies (PR_SET_PDEATHSIG); and die
    now if it already has. Nothing where prctl is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)


def _kill_workers() -> None:
    """Kill the run's local Dask workers at once: the work they hold is the run's, which ends."""
    with _state_lock:
        pids = set(_workers)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _kill_server() -> None:
    """Kill the temporary server's process group at once: a stopping run has nothing more to
    tell it, and a graceful shutdown waits for open connections."""
    server = _server
    process = getattr(server, "server_process", None)
    if process is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    try:
        process.wait(timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
