"""What every Dask worker of a run is given before its first extract task (flows/cluster.py).

Three worker plugins, sent by the flow's process when it connects to the cluster:

- `ExtractorBuild` ships the flow's mypyc build of the extractor (build/mypyc, about 2 MB)
  to workers that share no disk with it. The worker writes it under its own local
  directory and points GOVETL_MYPYC_BUILD at it, and tasks/extract/compiled.py uses it only
  while it was built from the very sources the worker has installed (their hash and the
  interpreter's tag): a worker with other sources runs interpreted, and says so.
- `IgnoreInterrupts`: a terminal's Ctrl-C reaches every process of its foreground group,
  LocalCluster workers included. The flow's process decides what a stop means
  (flows/interrupt.py) and its workers end with it; a worker that took the SIGINT itself
  would print a KeyboardInterrupt traceback instead.
- `QuietHeartbeat`: a LocalCluster stops with its run, and its scheduler may close between
  two heartbeats of a worker, which then logs the failed heartbeat with a traceback on the
  run's console. The flow's process reports a cluster lost during a run itself, with its
  reason (flows/cluster.py: ExtractFailed), so those records are dropped.

This module imports nothing of the extractor: unpickling a plugin on a worker must not
import `tasks.extract` before `ExtractorBuild.setup` has said where its build is.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

log = logging.getLogger(__name__)

BUILD_ENV = "GOVETL_MYPYC_BUILD"  # read by tasks/extract/compiled.py


class ExtractorBuild(WorkerPlugin):
    """The extractor's mypyc build, as files (path relative to the build directory → bytes)."""

    name = "govetl-extractor-build"

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    @classmethod
    def of_this_process(cls) -> ExtractorBuild | None:
        """The build this process would use (a current one), or None (no compiler, or the
        sources moved on since the last build: workers then run interpreted too)."""
        from tasks.extract import compiled  # here, not at the top: see the module docstring

        if compiled.current_build() is None:
            return None
        root = compiled.BUILD_DIR
        return cls({path.relative_to(root).as_posix(): path.read_bytes()
                    for path in sorted(root.rglob("*")) if path.is_file()})  # fmt: skip

    def setup(self, worker: Any) -> None:
        if "tasks.extract" in sys.modules:  # a worker process that served a run before keeps what it loaded then
            return
        target = Path(worker.local_directory) / "govetl-mypyc"
        for relative, data in self.files.items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        os.environ[BUILD_ENV] = str(target)


class IgnoreInterrupts(WorkerPlugin):
    """SIGINT is the flow's process's to handle (module docstring)."""

    name = "govetl-ignore-interrupts"

    def setup(self, worker: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        else:  # only the main thread may set a handler; a worker's event loop runs in it as a rule
            log.debug("worker %s: SIGINT left as it was (plugin set up outside the main thread)", worker.address)


class QuietHeartbeat(WorkerPlugin):
    """A heartbeat the scheduler did not answer goes unlogged (module docstring)."""

    name = "govetl-quiet-heartbeat"

    def setup(self, worker: Any) -> None:
        logging.getLogger("distributed.worker").addFilter(_not_a_failed_heartbeat)


def _not_a_failed_heartbeat(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Failed to communicate with scheduler during heartbeat")
