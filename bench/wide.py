"""A crawl as wide as the country, on loopback: one source per host, every host paced.

    python -m bench.wide --hosts 1000 --pages 10 --rate 1      (make bench runs it too, via bench.run)

Serves `hosts` loopback hosts, each a column of `pages` report pages (bench/hosts.py), and
runs the real nightly flow over them (`python -m flows.nightly`, a subprocess, against a
Prefect server: the one given by PREFECT_API_URL, else one started here), each source
paced at `rate` requests/s. It measures from outside the flow:

- the crawl's wall time: the flow's own discover + fetch seconds (its summary's `seconds:`
  line), against the slowest host's own minimum time, (its requests − 1) / rate from the
  server's log: `wide_crawl_vs_slowest` is the one over the other (1.0 is the floor);
- requests/s overall; the flow process's peak threads and its CPU seconds over the crawl
  (sampled from /proc); the most connections the server saw open at once; its CPU;
- politeness, from the server's clock: no host saw two requests closer than 1/rate, and
  each asked for robots.txt once;
- the load averages of the machine before and after (other work shares its cores);
- Prefect's cost per task run: `tasks` trivial task runs in one flow on the same server,
  the reason the crawl is CRAWL_TASKS task runs and not one per source.

The flow then extracts and loads the pages as usual (not measured here). Exit status 1
when the run failed, a page was not fetched, or politeness did not hold.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.flowruns import last_run_counts, parse_timings
from bench.hosts import HostLog, ManyHosts
from bench.prefect_server import PrefectServer
from tasks import settings
from tasks.settings import PROJECT_ROOT

log = logging.getLogger("bench.wide")

SAMPLE_SECONDS = 0.05  # /proc sampling period of the flow process
TARGET_RATIO = 1.5  # crawl wall ≤ 1.5 × the slowest host's own minimum: "close to the slowest host"
TASK_RUNS = 1000  # trivial task runs timed for Prefect's cost per task run
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class ProcessSample:
    at: float  # time.monotonic()
    threads: int
    cpu_s: float  # user + system


@dataclass
class WideResults:
    hosts: int
    pages: int
    rate: float
    command: str = ""
    exit_code: int | None = None
    wall_s: float = 0.0  # the whole flow subprocess, load included
    crawl_s: float = math.nan  # the flow's discover + fetch seconds
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, object] = field(default_factory=dict)  # the runs-table row of the run
    requests: int = 0
    slowest_minimum_s: float = math.nan
    sum_of_minimums_s: float = math.nan
    server_span_s: float = math.nan  # first to last request, on the server's clock
    busiest: int = 0  # most hosts between their first and last request at one instant
    peak_threads: int = 0  # of the flow process, while it crawled
    peak_threads_run: int = 0  # … over the whole run
    crawl_cpu_s: float = math.nan  # CPU of the flow process from the first request to the last
    server_cpu_s: float = math.nan
    peak_connections: int = 0  # open at once, as the server saw them
    connections: int = 0  # accepted over the crawl
    closest_gap_s: float = math.nan  # the shortest time between two requests to one host
    too_close: int = 0  # hosts that saw two requests closer than 1/rate
    robots_not_once: int = 0  # hosts that asked robots.txt other than once
    load_average: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())  # 1, 5, 15 min: before, after
    task_run_ms: float = math.nan  # Prefect's wall ms per task run, at TASK_RUNS
    task_run_cpu_ms: float = math.nan  # … of this process's CPU
    task_runs: int = 0
    bounds: dict[str, int] = field(default_factory=dict)  # the crawl settings in force
    log_path: Path | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """wide_crawl_vs_slowest: the crawl's wall time over the slowest host's own minimum."""
        return self.crawl_s / self.slowest_minimum_s if self.slowest_minimum_s else math.nan

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.crawl_s if self.crawl_s else math.nan

    @property
    def cores_used(self) -> float:
        return self.crawl_cpu_s / self.server_span_s if self.server_span_s else math.nan

    def validate(self) -> None:
        """Record why the figures would not describe the wide crawl they claim to."""
        expected = self.hosts * self.pages
        if self.exit_code != 0:
            self.problems.append(f"the wide run exited {self.exit_code} (see {self.log_path})")
        if self.counts.get("fetched") != expected:
            self.problems.append(f"the wide run fetched {self.counts.get('fetched')} pages, not {expected}")
        if self.too_close:
            self.problems.append(f"{self.too_close} host(s) saw two requests closer than 1/{self.rate:g} s "
                                 f"(closest {self.closest_gap_s:.3f} s)")  # fmt: skip
        if self.robots_not_once:
            self.problems.append(f"{self.robots_not_once} host(s) did not ask for robots.txt exactly once")
        if not self.timings:
            self.problems.append("the wide run logged no 'seconds:' line (run summary format changed?)")


# --- one wide crawl ----------------------------------------------------------------------------
def run_wide(hosts: int, pages: int, rate: float, work: Path, env: dict[str, str],
             task_runs: int = TASK_RUNS) -> WideResults:  # fmt: skip
    """Serve the hosts, run the nightly flow over them, and measure (module docstring)."""
    results = WideResults(hosts, pages, rate, bounds={name: getattr(settings, name) for name in (
        "CRAWL_WORKERS", "CRAWL_KEEP_ALIVE_HOSTS", "CRAWL_CONNECTIONS_PER_HOST", "CRAWL_TASKS")})  # fmt: skip
    work.mkdir(parents=True, exist_ok=True)
    results.load_average = (os.getloadavg(), ())
    with ManyHosts(hosts, pages, work / "requests.json") as site:
        sources = work / "sources.yaml"
        sources.write_text(yaml.safe_dump({"sources": site.sources(rate)}, allow_unicode=True, sort_keys=False),
                           encoding="utf-8")  # fmt: skip
        samples = _run_flow(results, sources, work, env)
        seen = site.stop()
    results.load_average = (results.load_average[0], os.getloadavg())
    _read_server_log(results, seen, samples)
    if task_runs:
        results.task_runs = task_runs
        results.task_run_ms, results.task_run_cpu_ms = time_task_runs(task_runs, env)
    results.validate()
    return results


def _run_flow(results: WideResults, sources: Path, work: Path, env: dict[str, str]) -> list[ProcessSample]:
    warehouse = work / "data" / "warehouse.duckdb"
    command = [sys.executable, "-m", "flows.nightly", "--sources", str(sources), "--warehouse", str(warehouse)]
    results.command, results.log_path = "python " + shlex.join(command[1:]), work / "wide.log"
    log.info("wide crawl: %d hosts × %d pages at %g request/s per host: %s", results.hosts, results.pages,
             results.rate, results.command)  # fmt: skip
    started = time.perf_counter()
    with open(results.log_path, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=PROJECT_ROOT)  # fmt: skip
        samples = sample_process(proc)
    results.wall_s, results.exit_code = time.perf_counter() - started, proc.returncode
    results.timings = parse_timings(results.log_path.read_text(encoding="utf-8", errors="replace"))
    results.crawl_s = results.timings.get("discover", math.nan) + results.timings.get("fetch", math.nan)
    results.counts = last_run_counts(warehouse)
    return samples


def sample_process(proc: subprocess.Popen) -> list[ProcessSample]:
    """Threads and CPU seconds of `proc`, every SAMPLE_SECONDS until it exits."""
    samples: list[ProcessSample] = []
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it just exited
            break
        threads = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Threads:"))
        samples.append(ProcessSample(time.monotonic(), threads, (int(stat[11]) + int(stat[12])) / _CLOCK_TICKS))
        time.sleep(SAMPLE_SECONDS)
    proc.wait()
    return samples


def _read_server_log(results: WideResults, seen: HostLog, samples: list[ProcessSample]) -> None:
    results.requests = len(seen.requests)
    results.slowest_minimum_s = seen.slowest_minimum(results.rate)
    results.sum_of_minimums_s = seen.sum_of_minimums(results.rate)
    results.server_span_s = seen.span()
    results.busiest = seen.busiest_moment()[1]
    results.peak_connections, results.connections = seen.peak_connections, seen.connections
    results.server_cpu_s = seen.cpu_seconds
    gaps = seen.closest_gaps()
    results.closest_gap_s = min(gaps.values(), default=math.nan)
    results.too_close = len(seen.too_close(results.rate))
    results.robots_not_once = sum(1 for count in seen.robots_requests().values() if count != 1)
    results.robots_not_once += results.hosts - len(seen.by_host)  # hosts never asked anything
    moments = [arrived for _, _, arrived, _ in seen.requests]
    if samples and moments:
        first, last = min(moments), max(moments)
        during = [s for s in samples if first - SAMPLE_SECONDS <= s.at <= last + SAMPLE_SECONDS] or samples
        results.peak_threads = max(s.threads for s in during)
        results.crawl_cpu_s = during[-1].cpu_s - during[0].cpu_s
    results.peak_threads_run = max((s.threads for s in samples), default=0)


# --- Prefect's cost per task run ----------------------------------------------------------------
def time_task_runs(count: int, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU milliseconds per task run of `count` trivial task runs submitted in one
    flow (a fresh process, the same Prefect server)."""
    done = subprocess.run([sys.executable, "-m", "bench.wide", "--time-task-runs", str(count)], env=env,
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("TASKRUNS ")), None)
    if line is None:
        log.warning("timing task runs failed (exit %d): %s", done.returncode, done.stderr[-2000:])
        return math.nan, math.nan
    figures = json.loads(line.removeprefix("TASKRUNS "))
    return figures["wall_ms"], figures["cpu_ms"]


def _time_task_runs_here(count: int) -> None:
    from prefect import flow, task
    from prefect.cache_policies import NONE
    from prefect.task_runners import ThreadPoolTaskRunner

    @task(cache_policy=NONE, task_run_name="noop-{i}")
    def noop(i: int) -> int:
        return i

    @flow(name="bench-task-runs", task_runner=ThreadPoolTaskRunner(max_workers=settings.FETCH_WORKERS))  # type: ignore[arg-type]
    def many(n: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        futures = [noop.submit(i) for i in range(n)]
        for future in futures:
            future.result()
        return (time.perf_counter() - wall) * 1000 / n, (time.process_time() - cpu) * 1000 / n

    many(10)  # the first task runs pay for imports and connections
    wall_ms, cpu_ms = many(count)
    print("TASKRUNS " + json.dumps({"wall_ms": wall_ms, "cpu_ms": cpu_ms}), flush=True)


# --- output -------------------------------------------------------------------------------------
def figure_line(w: WideResults) -> str:
    return (f"WIDE hosts={w.hosts} pages={w.pages} rate={w.rate:g} wide_crawl_vs_slowest={w.ratio:.2f} "
            f"crawl_s={w.crawl_s:.1f} slowest_host_s={w.slowest_minimum_s:.1f} requests_per_s={w.requests_per_s:.0f} "
            f"peak_threads={w.peak_threads} peak_connections={w.peak_connections} cpu_s={w.crawl_cpu_s:.1f}")  # fmt: skip


def markdown_section(w: WideResults) -> list[str]:
    """The BENCHMARKS.md section of the wide crawl."""
    before, after = (", ".join(f"{x:.2f}" for x in load) for load in w.load_average)
    b = w.bounds
    status = "met" if w.ratio <= TARGET_RATIO and not w.problems else "not met"
    return [
        f"## A wide crawl: {w.hosts:,} hosts × {w.pages} pages at {w.rate:g} request/s per host", "",
        f"`python -m flows.nightly --sources … --warehouse …` over {w.hosts:,} sources, one per loopback host (`bench/hosts.py`: a column of "
        f"the bench corpus on each of 127.101.x.y, one listening socket per address, in a process of its own), "
        f"each at `rate_limit_per_second: {w.rate:g}`. The crawl (discovery and downloads into the raw archive) "
        "is timed by the flow itself; the rest from outside, the server's clock included.", "",
        "| figure | value |", "|---|---:|",
        f"| **crawl wall time / the slowest host's own minimum (`wide_crawl_vs_slowest`)** | **{w.ratio:.2f}** "
        f"(target ≤ {TARGET_RATIO}: {status}) |",
        f"| crawl wall time (discover {w.timings.get('discover', math.nan):.1f} s + fetch "
        f"{w.timings.get('fetch', math.nan):.1f} s) | {w.crawl_s:.1f} s |",
        f"| the slowest host's own minimum: (its requests − 1) / rate | {w.slowest_minimum_s:.1f} s |",
        f"| the hosts one after another would take at least | {w.sum_of_minimums_s:,.0f} s |",
        f"| requests (robots.txt, listings, reports) / per second overall | {w.requests:,} / {w.requests_per_s:.0f} |",
        f"| most hosts in the middle of their crawl at one instant | {w.busiest:,} of {w.hosts:,} |",
        f"| peak threads of the flow process while crawling (whole run) | {w.peak_threads} ({w.peak_threads_run}) |",
        f"| peak connections open at once, seen by the server (accepted in all) | {w.peak_connections} "
        f"({w.connections:,}) |",
        f"| CPU of the flow process over the crawl / cores busy | {w.crawl_cpu_s:.1f} s / {w.cores_used:.2f} |",
        f"| CPU of the server process | {w.server_cpu_s:.1f} s |",
        f"| closest two requests to one host (server's clock) / hosts closer than 1/rate | {w.closest_gap_s:.3f} s / "
        f"{w.too_close} |",
        f"| hosts that asked robots.txt other than once | {w.robots_not_once} |",
        f"| Prefect's cost per task run ({w.task_runs:,} trivial task runs in one flow): wall / this process's CPU | "
        f"{w.task_run_ms:.1f} ms / {w.task_run_cpu_ms:.1f} ms |",
        f"| load average (1, 5, 15 min) before / after | {before} / {after} |", "",
        f"Bounds in force: CRAWL_WORKERS {b.get('CRAWL_WORKERS')} threads make the requests (at most that many in "
        f"flight), CRAWL_KEEP_ALIVE_HOSTS {b.get('CRAWL_KEEP_ALIVE_HOSTS')} hosts keep an idle connection (open "
        f"connections ≤ {b.get('CRAWL_WORKERS', 0) + b.get('CRAWL_KEEP_ALIVE_HOSTS', 0)}), "
        f"CRAWL_TASKS {b.get('CRAWL_TASKS')} Prefect task runs share out the sources. Thread and connection counts "
        f"do not grow with the number of hosts; the wall time does not grow with it while the machine keeps up "
        f"(at {w.requests_per_s:.0f} requests/s the flow process used {w.cores_used:.2f} cores: each request is "
        "a download, a zlib-compressed body and an archive transaction).", "",
        *([f"**Invalid:** {p}" for p in w.problems] + [""] if w.problems else []),
    ]  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.wide", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000, help="loopback hosts, one source each")
    parser.add_argument("--pages", type=int, default=10, help="report pages in each host's column")
    parser.add_argument("--rate", type=float, default=1.0, help="requests/s per host (rate_limit_per_second)")
    parser.add_argument("--task-runs", type=int, default=TASK_RUNS, help="trivial task runs timed (0: none)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, warehouse)")
    parser.add_argument("--time-task-runs", type=int, default=0, help=argparse.SUPPRESS)  # the child of time_task_runs
    args = parser.parse_args(argv)
    if args.hosts < 1 or args.pages < 1 or args.rate <= 0:
        parser.error("--hosts and --pages must be at least 1, --rate above 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.time_task_runs:
        _time_task_runs_here(args.time_task_runs)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="govetl-wide-"))
    if os.environ.get("PREFECT_API_URL"):
        results = run_wide(args.hosts, args.pages, args.rate, work, dict(os.environ), args.task_runs)
    else:
        with PrefectServer(work / "prefect") as prefect:
            results = run_wide(args.hosts, args.pages, args.rate, work, prefect.client_env(), args.task_runs)
    if args.keep or results.problems:  # a failed run's logs and warehouse are the evidence
        log.info("work directory kept: %s", work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.stdout.write("\n".join(markdown_section(results)) + "\n" + figure_line(results) + "\n")
    for problem in results.problems:
        log.error("invalid measurement: %s", problem)
    return 1 if results.problems else 0


if __name__ == "__main__":
    sys.exit(main())
