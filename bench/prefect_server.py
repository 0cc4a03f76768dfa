"""One dedicated Prefect server for the benchmark's flow runs, started before and stopped after.

Its start-up (15–20 s on the 2-core machine) is thus never counted in a run. It lives in
its own PREFECT_HOME (a temporary directory, so its SQLite database starts empty and
nothing touches ~/.prefect) and in its own process group, which `stop` signals: SIGINT
first, as Ctrl-C would, then SIGTERM, then SIGKILL if it will not go.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 120.0  # seconds to wait for /api/health
SETTLE_SECONDS = 3.0  # let the server write the last events before stopping it
STOP_TIMEOUT = 30.0  # seconds per signal before the next, harder one


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class PrefectServer:
    """`with PrefectServer(home) as server: env = server.client_env()`."""

    def __init__(self, home: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.home, self.host, self.port = home, host, port or free_port(host)
        self.log_path = home / "server.log"
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    def client_env(self) -> dict[str, str]:
        """The environment for flow subprocesses: this server, this PREFECT_HOME, no analytics."""
        return os.environ | {"PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.home),
                             "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # fmt: skip

    def start(self) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "prefect", "server", "start", "--host", self.host, "--port", str(self.port)]
        started = time.perf_counter()
        with open(self.log_path, "wb") as out:
            self._proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env=self.client_env(), start_new_session=True)  # fmt: skip
        self._wait_healthy(self._proc)
        self.startup_seconds = time.perf_counter() - started
        log.info("Prefect server up at %s after %.1f s", self.api_url, self.startup_seconds)
        return self

    def _wait_healthy(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"Prefect server exited with {proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        self.stop(settle=0)
        raise TimeoutError(f"Prefect server not healthy after {STARTUP_TIMEOUT:.0f} s; see {self.log_path}")

    def stop(self, settle: float = SETTLE_SECONDS) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        time.sleep(settle)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self._proc.pid, signum)  # the group we created for this server
            except ProcessLookupError:
                break
            try:
                self._proc.wait(timeout=STOP_TIMEOUT)
                break
            except subprocess.TimeoutExpired:
                log.warning("Prefect server ignored %s", signal.Signals(signum).name)
        log.info("Prefect server stopped (exit %s)", self._proc.returncode)

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.stop()
