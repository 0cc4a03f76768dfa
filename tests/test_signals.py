"""SIGINT and SIGTERM on a real `python -m flows.nightly` against the loopback sample site
(issue 17.7): the run ends within seconds with exit status 128 + the signal, one line on
stderr saying what was kept and what the next run does, no traceback, the run recorded as
interrupted in `runs`, no child process left behind (the temporary Prefect server, when
PREFECT_API_URL is unset); and the next run ends with every report loaded exactly once.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from sample_site.content import load_sample_sites
from tasks.settings import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SLOW_RATE = 3  # requests per second to the sample site: a run spends ~15 s fetching, time to interrupt it


@pytest.fixture
def slow_sources(sample_site, tmp_path: Path) -> Path:
    """The project's sources.yaml on the running sample site, paced to SLOW_RATE."""
    text = (PROJECT_ROOT / "sources.yaml").read_text(encoding="utf-8")
    text = text.replace("${SAMPLE_SITE_URL:-http://127.0.0.1:8765}", sample_site.base_url.rstrip("/"))
    text = text.replace("rate_limit_per_second: 20", f"rate_limit_per_second: {SLOW_RATE}")
    target = tmp_path / "sources.yaml"
    target.write_text(text, encoding="utf-8")
    return target


class Run:
    """A `python -m flows.nightly` in a process group of its own, its output in files."""

    def __init__(self, tmp_path: Path, sources: Path, env: dict[str, str]) -> None:
        self.warehouse = tmp_path / "data" / "warehouse.duckdb"
        self.archive = tmp_path / "data" / "archive" / "archive.sqlite"
        self.stdout, self.stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "flows.nightly", "--sources", str(sources),
                                          "--warehouse", str(self.warehouse)], cwd=PROJECT_ROOT, env=env,
                                         stdout=out, stderr=err, start_new_session=True)  # fmt: skip

    def wait_for_fetches(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.fetched() < count:
            assert self.proc.poll() is None, f"the run ended before fetching {count} pages:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {count} pages fetched in {timeout} s:\n{self.output()}"
            time.sleep(0.1)

    def fetched(self) -> int:
        if not self.archive.exists():
            return 0
        try:
            with sqlite3.connect(f"{self.archive.as_uri()}?mode=ro", uri=True) as con:
                return con.execute("select count(*) from fetches where outcome = 'fetched'").fetchone()[0]
        except sqlite3.OperationalError:  # created, schema not there yet
            return 0

    def interrupt(self, signum: int) -> tuple[float, str]:
        """Send `signum` as a terminal would (to the whole process group); return the seconds
        the process took to exit and what it wrote to stderr after the signal."""
        written = self.stderr.stat().st_size
        started = time.monotonic()
        os.killpg(self.proc.pid, signum)
        self.proc.wait(timeout=30)
        return time.monotonic() - started, self.stderr.read_bytes()[written:].decode()

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def children_of(pid: int) -> set[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def assert_stopped_cleanly(run: Run, signum: int, seconds: float, after: str) -> str:
    name = signal.Signals(signum).name
    assert run.proc.returncode == 128 + signum, run.output()
    assert seconds < 8, f"took {seconds:.1f} s to stop"
    lines = after.strip().splitlines()
    assert len(lines) == 1, after
    assert "Traceback" not in run.output()
    line = lines[0]
    assert line.startswith("nightly run ") and re.search(f"interrupted by {name} during (discovery and )?fetch;", line), line
    assert "kept:" in line and "the next run" in line and "Recorded as interrupted in runs." in line, line
    with duckdb.connect(str(run.warehouse), read_only=True) as con:
        assert con.execute("select status, message from runs").fetchall() == [("interrupted", line.removesuffix(
            " Recorded as interrupted in runs."))]  # fmt: skip
    return line


def assert_next_run_loads_every_report_once(run: Run, sources: Path, env: dict[str, str]) -> None:
    again = subprocess.run([sys.executable, "-m", "flows.nightly", "--sources", str(sources),
                            "--warehouse", str(run.warehouse)], cwd=PROJECT_ROOT, env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr
    listed = sum(len(site.articles) for site in load_sample_sites())
    with duckdb.connect(str(run.warehouse), read_only=True) as con:
        assert con.execute("select count(*), count(distinct index_no) from reports").fetchone() == (listed, listed)
        assert con.execute("select status from runs order by started_at").fetchall() == [("interrupted",),
                                                                                         ("completed",)]  # fmt: skip


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_fetch_stops_the_run_in_one_line_and_the_next_run_finishes_it(
        prefect_api, slow_sources, tmp_path, signum):  # fmt: skip
    env = os.environ | {"PREFECT_API_URL": prefect_api}
    run = Run(tmp_path, slow_sources, env)
    try:
        run.wait_for_fetches(5)
        seconds, after = run.interrupt(signum)
    finally:
        run.kill()
    line = assert_stopped_cleanly(run, signum, seconds, after)
    assert f"({run.archive})" in line
    assert_next_run_loads_every_report_once(run, slow_sources, env)


def test_without_an_api_url_the_temporary_prefect_server_goes_with_the_run(sample_site, slow_sources, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {
        "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    run = Run(tmp_path, slow_sources, env)
    try:
        run.wait_for_fetches(5, timeout=90)
        servers = children_of(run.proc.pid)
        assert servers, "the temporary Prefect server is a child of the run"
        assert all(os.getsid(pid) != os.getsid(run.proc.pid) for pid in servers)  # out of the terminal's group
        seconds, after = run.interrupt(signal.SIGINT)
    finally:
        run.kill()
    assert_stopped_cleanly(run, signal.SIGINT, seconds, after)
    assert not [pid for pid in servers if alive(pid)], "a child outlived the run"


# --- kill at random points, rerun (issue 17 "done when"; scripts/kill_test.py runs 20) ------
@pytest.mark.timeout(300)
@pytest.mark.parametrize("stage, signum", [("fetch", signal.SIGTERM), ("load", signal.SIGINT),
                                           ("finalise", signal.SIGKILL)], ids=["fetch-SIGTERM", "load-SIGINT",
                                                                               "finalise-SIGKILL"])  # fmt: skip
def test_a_run_killed_anywhere_then_rerun_has_every_report_once(prefect_api, sample_site, tmp_path, stage, signum):
    from scripts import kill_test

    sources = kill_test.sources_file(sample_site.base_url, tmp_path)
    env = os.environ | {"PREFECT_API_URL": prefect_api}
    nth = {"fetch": 20, "load": 1, "finalise": 1}[stage]
    result = kill_test.run_try(1, stage, signum, 0.02, nth, tmp_path, sources, env)
    assert result.problems == [], result.line()
    assert result.reports == kill_test.expected_reports() and result.rerun_exit == 0
    if signum != signal.SIGKILL and not result.finished_first:
        assert result.killed_exit == 128 + signum and result.lines_after == 1
