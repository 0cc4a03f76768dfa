"""One nightly run at a time per warehouse (per source, on a lake), and a way to ask the
running one to stop.

The run lock of a DuckDB file is a file lock beside it. A second run waits up to
RUN_LOCK_TIMEOUT seconds, then stops with a message naming the holder (pid, host, start
time), read from a small info file written under the lock. The OS releases the lock when
its process dies, even by kill -9, so a crash never leaves the warehouse locked.

A lake (`ducklake:postgres:<dsn>`, warehouse/backend/lake.py) takes many writers, perhaps on many
machines, and no file is beside it: its run lock is one PostgreSQL advisory lock per source
the run loads, held by a session of the run's own on the lake's catalog database. Runs of
other sources go on side by side; a second run of a source waits as above, then stops
naming the holder (the session's application_name: pid, host, start time). PostgreSQL
releases the locks when the session ends, a killed process's included. Locks are taken in
the order of their names and a run holds none while it waits for one, so two runs wanting
overlapping sets never deadlock.

Stopping: `request_stop()` (called when SIGINT or SIGTERM arrives) makes every later
`raise_if_stopping()` raise RunInterrupted, which the fetcher calls before and after each
download, so that nothing a stopping process sees is recorded as a page's outcome.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from tasks import settings

if TYPE_CHECKING:  # psycopg is imported only when a lake's run lock is taken (_source_locks):
    import psycopg  # ~9 MB every run would otherwise hold


class RunLockedError(RuntimeError):
    """Another run holds the warehouse's run lock; the message says who and since when."""


class RunLockUnavailable(RunLockedError):
    """A lake's run lock could not be asked for: its PostgreSQL catalog does not answer."""


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
def run_lock(warehouse_path: str | Path, timeout: float | None = None, *,
             sources: Collection[str] = ()) -> Iterator[None]:
    """Hold the run lock of the warehouse for the block: the file's, or on a lake the locks of
    `sources` (the sources the run loads) alone (module doc)."""
    catalog = settings.lake_catalog(warehouse_path)
    if catalog is not None:
        with _source_locks(catalog, sources, settings.RUN_LOCK_TIMEOUT if timeout is None else timeout):
            yield
        return
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


# --- a lake: advisory locks per source -----------------------------------------------------
# The first key of every run lock (PostgreSQL's two-key advisory locks): the second is the
# source name's hashtext. Two sources whose names hash alike share a lock (they then take turns).
_LOCK_SPACE = 0x676F76  # "gov"
_BACKOFF_START_S, _BACKOFF_MAX_S = 0.1, 2.0


@contextmanager
def _source_locks(dsn: str, sources: Collection[str], timeout: float) -> Iterator[None]:
    holder = f"govetl run: pid {os.getpid()} on {socket.gethostname()}, started {datetime.now(UTC):%Y-%m-%dT%H:%M:%S}Z"
    import psycopg  # here alone (the TYPE_CHECKING import above says why)

    shown = settings.redact_dsn(settings.LAKE_PREFIX + dsn)
    try:
        session = psycopg.connect(dsn, autocommit=True, application_name=holder[:63], connect_timeout=10)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        raise RunLockUnavailable(f"cannot take the run lock of the lake {shown}: its PostgreSQL catalog does not "
                                 f"answer ({settings.redact_dsn(reason)}). Nothing was fetched or written.") from None
    try:
        _acquire(session, sorted(set(sources)), timeout, shown)
        yield
    finally:
        session.close()  # ends the session: PostgreSQL releases its advisory locks


def _acquire(session: psycopg.Connection, names: list[str], timeout: float, shown: str) -> None:
    """Lock every name, in order, never holding one while waiting for an earlier one."""
    started, delay, held = time.monotonic(), _BACKOFF_START_S, 0
    while held < len(names):
        row = session.execute("select pg_try_advisory_lock(%s, hashtext(%s))", (_LOCK_SPACE, names[held])).fetchone()
        if row and row[0]:
            held += 1
            continue
        waited = time.monotonic() - started
        if waited >= timeout:
            raise RunLockedError(
                f"another run is using {shown} for source {names[held]} ({_lock_holder(session, names[held])}); "
                f"waited {timeout:.0f}s. Nothing was fetched or written by this run; it can simply be started "
                "again later.")
        time.sleep(min(delay, max(timeout - waited, 0.0)))
        delay = min(delay * 2, _BACKOFF_MAX_S)


def _lock_holder(session: psycopg.Connection, name: str) -> str:
    row = session.execute(
        """select a.application_name from pg_locks as l join pg_stat_activity as a on a.pid = l.pid
           where l.locktype = 'advisory' and l.granted and l.objsubid = 2 and l.classid::bigint = %s
             and l.objid::bigint = (hashtext(%s)::bigint & 4294967295)""", (_LOCK_SPACE, name)).fetchone()
    return str(row[0]) if row and row[0] else "holder unknown"
