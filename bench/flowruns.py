"""Run a flow's command line in a subprocess and measure it: wall time, peak RSS, stage seconds.

The peak resident set is the child's own high-water mark (VmHWM in /proc, sampled every
SAMPLE_SECONDS), so neither the benchmark process nor the Prefect server is counted; not
`ru_maxrss`, which also counts the benchmark's memory the child was forked with. VmRSS is
sampled as well and split at the last "Task run … Finished" line of its log: the peak
while tasks still ran (crawl, extract, load) against the peak after the last task
(finalise: fetch log, data-quality checks, snapshot; then teardown).
Stage seconds are the flow's own: the "seconds: discover …, total …" line its run
summary logs.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from bench.machine import process_memory_mb
from tasks.settings import PROJECT_ROOT
from warehouse.backend.tx import one_row

if TYPE_CHECKING:
    from resource import struct_rusage  # os.wait4's third item (os has no struct_rusage)

log = logging.getLogger(__name__)

STAGES = ("discover", "fetch", "extract", "load", "finalise")  # the flow's own seconds, in order
SAMPLE_SECONDS = 0.25  # VmRSS sampling period
_SECONDS_LINE = re.compile(r"^seconds: (.+)$", re.M)
_TASK_FINISHED = b"Task run '"


@dataclass
class FlowRun:
    """One flow subprocess, measured from outside and as it reported itself."""

    name: str
    command: list[str]
    exit_code: int
    wall_s: float
    peak_rss_mb: float
    timings: dict[str, float] = field(default_factory=dict)  # the run summary's seconds
    counts: dict[str, object] = field(default_factory=dict)  # the runs-table row of this run
    log_path: Path | None = None
    rss_tasks_mb: float = 0.0  # sampled peak up to the last task run's end
    rss_after_tasks_mb: float = 0.0  # sampled peak after it (finalise, teardown)

    @property
    def stage_s(self) -> float:
        return sum(self.timings.get(stage, 0.0) for stage in STAGES)

    @property
    def orchestration_s(self) -> float:
        """Wall time the stages do not account for: start-up, Prefect's engine, task runs."""
        return max(0.0, self.wall_s - self.stage_s)

    def share(self, seconds: float) -> float:
        return seconds / self.wall_s if self.wall_s else 0.0


def run_flow(name: str, module: str, args: list[str], env: dict[str, str], log_path: Path) -> FlowRun:
    """`python -m <module> <args>` with `env`; its output goes to `log_path`."""
    command = [sys.executable, "-m", module, *args]
    log.info("%s: %s", name, " ".join(command))
    started = time.perf_counter()
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=PROJECT_ROOT)  # fmt: skip
        status, usage, samples = _wait_sampling(proc.pid, log_path)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    text = log_path.read_text(encoding="utf-8", errors="replace")
    run = FlowRun(name, command, proc.returncode, wall, _peak_mb(samples, usage), parse_timings(text),
                  log_path=log_path)  # fmt: skip
    run.rss_tasks_mb, run.rss_after_tasks_mb = _split_peaks(samples)
    log.info("%s: exit %d, %.1f s wall, peak RSS %.0f MB, %s", name, run.exit_code, wall, run.peak_rss_mb,
             ", ".join(f"{k} {v:.2f}" for k, v in run.timings.items()))  # fmt: skip
    if run.exit_code != 0:
        log.error("%s failed; last lines of %s:\n%s", name, log_path, "\n".join(text.splitlines()[-30:]))
    return run


def _wait_sampling(pid: int, log_path: Path) -> tuple[int, struct_rusage, list[RssSample]]:
    """Reap the child (wait4, for its rusage) while sampling its memory."""
    samples: list[RssSample] = []
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage, samples
        memory = process_memory_mb(pid)
        if "VmRSS" in memory:
            samples.append(RssSample(log_path.read_bytes().count(_TASK_FINISHED), memory["VmRSS"],
                                     memory.get("VmHWM", memory["VmRSS"])))  # fmt: skip
        time.sleep(SAMPLE_SECONDS)


@dataclass
class RssSample:
    tasks_finished: int  # task runs the log shows finished at the time
    rss_mb: float  # VmRSS
    hwm_mb: float  # VmHWM: the process's peak so far


def _peak_mb(samples: list[RssSample], usage: struct_rusage) -> float:
    """The run's peak RSS: its own VmHWM as last sampled. ru_maxrss would also count, at
    exec, the benchmark process's memory the child was forked with (Linux keeps the old
    mm's high-water mark); it stands in only when no sample was taken."""
    return max((s.hwm_mb for s in samples), default=usage.ru_maxrss / 1024)


def _split_peaks(samples: list[RssSample]) -> tuple[float, float]:
    """(peak until the last task run finished, peak after it), from the samples."""
    if not samples:
        return 0.0, 0.0
    last_count = samples[-1].tasks_finished
    before = [s.rss_mb for s in samples if s.tasks_finished < last_count]
    after = [s.rss_mb for s in samples if s.tasks_finished == last_count]
    return max(before, default=0.0), max(after, default=0.0)


def parse_timings(text: str) -> dict[str, float]:
    """The last "seconds: discover 1.23, fetch 4.56, …" line of a run's output."""
    lines = _SECONDS_LINE.findall(text)
    if not lines:
        return {}
    pairs = (item.strip().rsplit(" ", 1) for item in lines[-1].split(","))
    return {key: float(value) for key, value in pairs}


def time_imports(module: str, env: dict[str, str]) -> tuple[float, float]:
    """Seconds for a fresh interpreter to import the flow module (a run pays it before
    anything), and the MB it is then resident with: the floor under every run's peak.

    The best of two tries: the first may pay for a cold page cache the flow runs do not.
    """
    best, resident = float("inf"), 0.0
    report_peak = f"import {module}; from bench.machine import own_peak_mb; print(own_peak_mb())"
    for _ in range(2):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", report_peak], env=env, cwd=PROJECT_ROOT, check=True,
                              capture_output=True, text=True)  # fmt: skip
        best, resident = min(best, time.perf_counter() - started), float(done.stdout.split()[-1])
    return best, resident


def last_run_counts(warehouse: Path) -> dict[str, object]:
    """The newest row of the runs table: status and outcome counts ({} without a warehouse)."""
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            cursor = con.execute("select * from runs order by started_at desc limit 1")
            names = [d[0] for d in cursor.description]
            row = cursor.fetchone()
    except duckdb.Error as exc:
        log.warning("cannot read the runs table of %s: %s", warehouse, exc)
        return {}
    return {k: v for k, v in zip(names, row or ()) if k not in ("parameters", "message")}


def warehouse_rows(warehouse: Path) -> dict[str, int]:
    """Rows of the data tables a full run loads, and how many load transactions it took."""
    tables = ("reports", "sections", "metrics", "ranks", "loads")
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            counts = {t: one_row(con, f"select count(*) from {t}")[0] for t in tables}
            counts["max_pages_per_load"] = one_row(con, "select coalesce(max(pages), 0) from loads")[0]
    except duckdb.Error as exc:
        log.warning("cannot count the rows of %s: %s", warehouse, exc)
        return {}
    return counts
