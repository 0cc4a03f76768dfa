"""One nightly run at a time per warehouse, and a way to ask the running one to stop.

The run lock is a file lock beside the DuckDB file. A second run waits up to
RUN_LOCK_TIMEOUT seconds, then stops with a message naming the holder (pid, host, start
time), read from a small info file written under the lock. The OS releases the lock when
its process dies, even by kill -9, so a crash never leaves the warehouse locked.

Stopping: `request_stop()` (called when SIGINT or SIGTERM arrives) makes every later
`raise_if_stopping()` raise RunInterrupted, which the fetcher calls before and after each
download, so that nothing a stopping process sees is recorded as a page's outcome.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from tasks import settings


class RunLockedError(RuntimeError):
    """Another run holds the warehouse's run lock; the message says who and since when."""


class RunInterrupted(Exception):
    """The run was asked to stop (SIGINT, SIGTERM); raised where work would otherwise go on."""


_STOP = threading.Event()


def request_stop() -> None:
    """Ask the run in this process to stop: every later raise_if_stopping() raises."""
    _STOP.set()


def stop_requested() -> bool:
    return _STOP.is_set()


def raise_if_stopping() -> None:
    if _STOP.is_set():
        raise RunInterrupted("the run is stopping (SIGINT or SIGTERM)")


def clear_stop() -> None:
    """Forget a stop request (a process that runs again after one, such as a test)."""
    _STOP.clear()


@contextmanager
def run_lock(warehouse_path: str | Path, timeout: float | None = None) -> Iterator[None]:
    warehouse_path = Path(warehouse_path)
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = warehouse_path.with_name(warehouse_path.name + ".lock")
    info_path = warehouse_path.with_name(warehouse_path.name + ".lock.json")
    timeout = settings.RUN_LOCK_TIMEOUT if timeout is None else timeout
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise RunLockedError(
            f"another run is using {warehouse_path} ({_holder(info_path)}); waited {timeout:.0f}s. "
            "Nothing was fetched or written by this run; it can simply be started again later."
        ) from None
    try:
        info_path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                         "started_at": datetime.now(UTC).isoformat(timespec="seconds")}))  # fmt: skip
        yield
    finally:
        info_path.unlink(missing_ok=True)
        lock.release()


def _holder(info_path: Path) -> str:
    try:
        info = json.loads(info_path.read_text())
        return f"pid {info['pid']} on {info['host']}, started {info['started_at']}"
    except (OSError, ValueError, KeyError):
        return "holder unknown"
