"""Kill nightly runs at random points, rerun, and check that nothing was lost or doubled.

    python scripts/kill_test.py [--tries 20] [--seed 17] [--temporary-server]

Issue 17's "done when": from a fresh start, a `python -m flows.nightly` over the bundled
sample site (served here on loopback) is killed at a random point of one of its stages
(fetch, extract, load, finalise) with SIGINT, SIGTERM or SIGKILL; then a plain run follows.
Every try must end with every report of the sample site loaded exactly once, whole (its
sections present), the raw archive and the warehouse agreeing (no fetched page left
unloaded, every archived fetch in fetch_log exactly once), and no run left `running`. A
SIGINT or SIGTERM must also end the run within seconds, with exit status 128 + signal, one
line on stderr after the signal and no traceback, the run recorded as `interrupted`; with
--temporary-server (PREFECT_API_URL unset: each run starts its own Prefect server), no
child process may outlive the run, whatever the signal.

Where the run is killed: a driver wraps one function of the stage (a download, the
extraction of a page, a load transaction's merge, the fetch-log copy at finalise), touches
a marker file on its k-th call (k at random), and the run is killed a random 0-300 ms
later (0-50 ms for the short stages). It prints one line per try, then the figures. Exit
status 0 when every try passed. Not part of the test suite (about 10 s a try);
tests/test_signals.py runs three tries of it.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry from the shared server

import duckdb  # noqa: E402

from sample_site import SampleSiteServer, build_sample_corpus  # noqa: E402
from sample_site.content import load_sample_sites  # noqa: E402
from warehouse.backend.tx import one_row  # noqa: E402

STAGES = ("fetch", "extract", "load", "finalise")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)

# Runs flows.nightly's command line after wrapping the stage's function so that its k-th call
# touches the marker file (then carries on: the kill lands wherever the run is by then).
#   python -c DRIVER STAGE K MARKER -- <nightly arguments>
DRIVER = """
import sys
from pathlib import Path
stage, nth, marker = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
args = sys.argv[sys.argv.index("--") + 1:]
import flows.stages, tasks.crawl.fetch, tasks.steps, warehouse.writer.load
calls = []

def marking(real):
    def wrapper(*a, **k):
        calls.append(1)
        if len(calls) == nth:
            marker.write_text("reached")
        return real(*a, **k)
    return wrapper

if stage == "fetch":
    tasks.crawl.fetch.Fetcher.fetch = marking(tasks.crawl.fetch.Fetcher.fetch)
elif stage == "extract":
    tasks.steps.page_record = marking(tasks.steps.page_record)
elif stage == "load":
    warehouse.writer.load._merge = marking(warehouse.writer.load._merge)
else:
    flows.stages.record_fetch_log = marking(flows.stages.record_fetch_log)
from flows.nightly import main
sys.exit(main(args))
"""
# How many calls each stage makes in a first run of the sample site (k is drawn below it).
CALLS = {"fetch": 45, "extract": 45, "load": 1, "finalise": 1}
DELAY = {"fetch": 0.3, "extract": 0.05, "load": 0.05, "finalise": 0.05}


@dataclass
class Try:
    number: int
    stage: str
    signum: int
    delay: float
    killed_exit: int | None = None
    stop_seconds: float | None = None
    lines_after: int | None = None
    finished_first: bool = False  # the run was over before the signal arrived
    rerun_exit: int | None = None
    reports: int | None = None
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        name = signal.Signals(self.signum).name
        stop = f"stopped in {self.stop_seconds:.2f} s" if self.stop_seconds is not None else "-"
        head = (f"try {self.number:2d}: {self.stage:8s} {name:7s} +{self.delay * 1000:3.0f} ms  exit {self.killed_exit}, "
                f"{stop}{', had finished' if self.finished_first else ''}; rerun exit {self.rerun_exit}, "
                f"{self.reports} reports")  # fmt: skip
        return head + ("  OK" if not self.problems else "  FAILED: " + "; ".join(self.problems))


def expected_reports() -> int:
    return sum(len(site.articles) for site in load_sample_sites())


def sources_file(base_url: str, directory: Path) -> Path:
    text = (REPO / "sources.yaml").read_text(encoding="utf-8")
    target = directory / "sources.yaml"
    target.write_text(text.replace("${SAMPLE_SITE_URL:-http://127.0.0.1:8765}", base_url.rstrip("/")), encoding="utf-8")
    return target


def run_try(number: int, stage: str, signum: int, delay: float, nth: int, workdir: Path, sources: Path,
            env: dict[str, str]) -> Try:  # fmt: skip
    """One kill at `stage` (its `nth` call, then `delay` seconds) and the rerun, checked."""
    result = Try(number, stage, signum, delay)
    warehouse = workdir / "data" / "warehouse.duckdb"
    marker, stderr_path = workdir / "reached", workdir / "killed.stderr"
    args = ["--sources", str(sources), "--warehouse", str(warehouse)]
    with stderr_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, stage, str(nth), str(marker), "--", *args], cwd=REPO,
                                env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)  # fmt: skip
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            children |= _children(proc.pid)
            time.sleep(0.01)
        if not marker.exists():
            result.problems.append(f"the run never reached {stage} call {nth} (exit {proc.poll()})")
            return result
        time.sleep(delay)
        children |= _children(proc.pid)
        written = stderr_path.stat().st_size
        started = time.monotonic()
        result.finished_first = proc.poll() is not None
        if signum == signal.SIGKILL:
            os.kill(proc.pid, signal.SIGKILL)  # a kill -9 reaches the process, not its group
        else:
            os.killpg(proc.pid, signum)  # as a terminal (Ctrl-C) or a scheduler's timeout sends it
        proc.wait(timeout=60)
        result.stop_seconds = time.monotonic() - started
        result.killed_exit = proc.returncode
        after = stderr_path.read_bytes()[written:].decode(errors="replace")
        result.lines_after = len(after.strip().splitlines())
        _check_stop(result, stderr_path.read_text(errors="replace"), after, warehouse)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    deadline = time.monotonic() + 5  # a child killed with its parent may take a moment to go
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    leftovers = [pid for pid in children if _alive(pid)]
    if leftovers:
        result.problems.append(f"children left behind: {leftovers}")
        for pid in leftovers:
            _kill(pid)
    rerun = subprocess.run([sys.executable, "-m", "flows.nightly", *args], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    result.rerun_exit = rerun.returncode
    if rerun.returncode != 0:
        result.problems.append(f"rerun exit {rerun.returncode}: {rerun.stderr.strip().splitlines()[-1:]}")
    _check_whole(result, warehouse)
    return result


def _check_stop(result: Try, stderr: str, after: str, warehouse: Path) -> None:
    if "Traceback" in stderr:
        result.problems.append("a traceback on stderr")
    if result.signum == signal.SIGKILL:
        return
    if result.finished_first:
        if result.killed_exit != 0:
            result.problems.append(f"finished before the signal, exit {result.killed_exit}")
        return
    if result.killed_exit not in (128 + result.signum, 0):  # 0: the run ended as the signal came
        result.problems.append(f"exit {result.killed_exit}, not {128 + result.signum}")
    if result.killed_exit == 0:
        result.finished_first = True
        return
    if result.stop_seconds is not None and result.stop_seconds > 8:
        result.problems.append(f"took {result.stop_seconds:.1f} s to stop")
    if result.lines_after != 1 or "interrupted by" not in after:
        result.problems.append(f"{result.lines_after} lines after the signal: {after.strip()[:300]!r}")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        statuses = [s for (s,) in con.execute("select status from runs order by started_at").fetchall()]
    finished = statuses[-1:] == ["completed"] and "It had finished as completed in runs." in after  # at the snapshot
    if statuses[-1:] != ["interrupted"] and not finished:
        result.problems.append(f"runs say {statuses}, not interrupted")


def _check_whole(result: Try, warehouse: Path) -> None:
    listed = expected_reports()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        count, distinct = one_row(con, "select count(*), count(distinct index_no) from reports")
        (empty,) = one_row(con, "select count(*) from reports r anti join sections s using (index_no)")
        logged = dict(con.execute("select fetch_id, count(*) from fetch_log group by fetch_id").fetchall())
        (running,) = one_row(con, "select count(*) from runs where status = 'running'")
        urls = one_row(con, "select count(*), count(distinct url) from report_urls")
    result.reports = count
    if (count, distinct) != (listed, listed):
        result.problems.append(f"{count} reports ({distinct} distinct), not {listed}")
    if empty:
        result.problems.append(f"{empty} reports without sections")
    if urls[0] != urls[1]:
        result.problems.append("a report URL twice")
    if running:
        result.problems.append(f"{running} runs still running")
    with sqlite3.connect(f"{(warehouse.parent / 'archive' / 'archive.sqlite').as_uri()}?mode=ro", uri=True) as con:
        archived = [row[0] for row in con.execute("select fetch_id from fetches")]
        unloaded = con.execute("select count(*) from fetches f where outcome = 'fetched' and loaded_run_id is null and "
                               "fetch_id = (select max(fetch_id) from fetches where url = f.url and "
                               "outcome = 'fetched')").fetchone()[0]  # fmt: skip
    if unloaded:
        result.problems.append(f"{unloaded} archived pages not loaded")
    if sorted(logged) != sorted(archived) or set(logged.values()) - {1}:
        missing = len(set(archived) - set(logged))
        result.problems.append(f"fetch_log disagrees with the archive ({missing} missing)")


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def sample_site_and_api(temporary_server: bool) -> Iterator[tuple[str, dict[str, str]]]:
    """The sample site on loopback, and the environment of the runs: a Prefect server shared
    by every run (unless each run is to start its own)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    with SampleSiteServer(build_sample_corpus()) as site:
        if temporary_server:
            yield site.base_url, env
            return
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        server.start()
        try:
            yield site.base_url, env | {"PREFECT_API_URL": server.api_url}
        finally:
            server.stop()


def plan(tries: int, seed: int) -> list[tuple[str, int, float, int]]:
    """(stage, signal, delay, nth call) per try: every stage and signal in turn, the rest at random."""
    rng = random.Random(seed)
    combos = [(stage, signum) for signum in SIGNALS for stage in STAGES]
    rng.shuffle(combos)
    chosen = [combos[i % len(combos)] for i in range(tries)]
    return [(stage, signum, rng.uniform(0, DELAY[stage]), rng.randint(1, CALLS[stage])) for stage, signum in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/kill_test.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--temporary-server", action="store_true",
                        help="leave PREFECT_API_URL unset: every run starts (and must stop) its own Prefect server")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="kill-test-") as tmp, \
            sample_site_and_api(args.temporary_server) as (base_url, env):  # fmt: skip
        sources = sources_file(base_url, Path(tmp))
        for number, (stage, signum, delay, nth) in enumerate(plan(args.tries, args.seed), 1):
            workdir = Path(tmp) / f"try-{number}"
            workdir.mkdir()
            results.append(run_try(number, stage, signum, delay, nth, workdir, sources, env))
            print(results[-1].line(), flush=True)
    print(summary(results))
    return 0 if all(not r.problems for r in results) else 1


def summary(results: list[Try]) -> str:
    passed = sum(1 for r in results if not r.problems)
    stopped = [r.stop_seconds for r in results if r.signum != signal.SIGKILL and not r.finished_first and r.stop_seconds]
    by = lambda key: ", ".join(f"{k} {sum(1 for r in results if key(r) == k)}"  # noqa: E731
                               for k in dict.fromkeys(key(r) for r in results))  # fmt: skip
    return "\n".join([
        f"{passed}/{len(results)} tries passed: every report of the sample site ({expected_reports()}) loaded exactly "
        "once after the rerun" if passed == len(results) else f"{passed}/{len(results)} tries passed",
        f"stages: {by(lambda r: r.stage)}; signals: {by(lambda r: signal.Signals(r.signum).name)}",
        f"SIGINT/SIGTERM: stopped in {min(stopped):.2f}-{max(stopped):.2f} s (mean {sum(stopped) / len(stopped):.2f})"
        if stopped else "SIGINT/SIGTERM: none stopped a running run",
        f"runs over before their signal: {sum(1 for r in results if r.finished_first)}",
    ])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
