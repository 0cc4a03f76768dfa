"""Benchmark the pipeline end to end and write BENCHMARKS.md.

    python -m bench.run --n 2000 --out BENCHMARKS.md        (make bench [N=10000])

In one run: generate N report pages in the sample site's templates and serve them on
loopback; compare extraction throughput with trafilatura on one core; start one Prefect
server; run the nightly flow over the N new pages, again as a no-op rerun, then the
reprocess flow over the raw archive, each as its own `python -m flows.…` subprocess
(rate limit off), and the same reprocess with its extract batches on a Dask LocalCluster
of k workers for each k of --dask-workers-list (1, 2, 4); then the wide crawl
(bench/wide.py: --wide-hosts loopback hosts of --wide-pages pages each, paced at
--wide-rate); stop the server. Prints the figures; the last line is (one line)

    BENCH n=… extract_vs_trafilatura=… real_vs_trafilatura=… orchestration_share=… noop_fraction=…
          reprocess_pages_per_s=… peak_rss_mb=… dask_speedup_2w=… load_rows_per_s=… wide_crawl_vs_slowest=…

Exit status 1 when a measured run failed or did not load every page (the figures would
describe something else); timings never fail it.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shlex
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

from bench.corpus import DEFAULT_SEED, BenchCorpus, build_bench_corpus
from bench.extraction import compare_extractors, compare_on_real_pages
from bench.flowruns import last_run_counts, run_flow, time_imports, warehouse_rows
from bench.machine import current_rss_mb, machine_info
from bench.prefect_server import PrefectServer
from bench.report import Results, bench_line, render_markdown, summary_lines
from bench.wide import TASK_RUNS, run_wide
from sample_site import SampleSiteServer
from tasks.settings import SOURCES_FILE
from tasks.sources import expand_env, load_sources

log = logging.getLogger("bench")

EXTRACTION_SAMPLE = 300  # pages in the one-core extractor comparison
DASK_WORKER_COUNTS = (1, 2, 4)  # LocalCluster sizes the reprocess runs on


def _worker_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(sorted({int(item) for item in text.split(",") if item.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected worker counts like 1,2,4, not {text!r}") from None
    if any(k < 1 for k in counts):
        raise argparse.ArgumentTypeError(f"worker counts must be at least 1, not {text!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("sample_site").setLevel(logging.WARNING)  # one line per request otherwise
    results = run_benchmark(args)
    out = Path(args.out)
    out.write_text(render_markdown(results), encoding="utf-8")
    log.info("wrote %s", out)
    sys.stdout.write("\n".join(summary_lines(results)) + "\n")
    sys.stdout.write(bench_line(results) + "\n")
    sys.stdout.flush()
    for problem in results.problems:
        log.error("invalid measurement: %s", problem)
    return 1 if results.problems else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="report pages to generate and crawl")
    parser.add_argument("--out", default="BENCHMARKS.md", help="where to write the report")
    parser.add_argument("--sample", type=int, default=EXTRACTION_SAMPLE, help="pages in the extractor comparison")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per extractor (median kept)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="corpus RNG seed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (warehouse, logs)")
    parser.add_argument("--dask-workers-list", type=_worker_counts, default=DASK_WORKER_COUNTS, metavar="K,K,…",
                        help="reprocess again on a Dask LocalCluster of each many workers (default 1,2,4; "
                             "dask_speedup_2w needs 1 and 2; empty: skip)")
    parser.add_argument("--wide-hosts", type=int, default=1000, help="hosts of the wide crawl (0: skip it)")
    parser.add_argument("--wide-pages", type=int, default=10, help="report pages per host in the wide crawl")
    parser.add_argument("--wide-rate", type=float, default=1.0, help="requests/s per host in the wide crawl")
    parser.add_argument("--wide-task-runs", type=int, default=TASK_RUNS, help="trivial task runs timed (Prefect's cost)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    args.command = "python -m bench.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    return args


def run_benchmark(args: argparse.Namespace) -> Results:
    results = Results(n=args.n, command=args.command, started=datetime.now().astimezone(), machine=machine_info())
    load_at_start = os.getloadavg()[0]
    started = time.perf_counter()
    bench = build_bench_corpus(args.n, args.seed)
    results.corpus_seconds, results.corpus = time.perf_counter() - started, bench
    results.serving_rss_mb = current_rss_mb()
    log.info("corpus: %d report pages, %d resources, %.1f MB rendered, %.1f MB held, %.1f s",
             bench.n_pages, len(bench.corpus), bench.raw_bytes / 1e6, bench.corpus.packed_bytes() / 1e6,
             results.corpus_seconds)  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="govetl-bench-"))
    try:
        measure(results, bench, tmp, args)
    finally:
        results.bench_peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results.load_average = (load_at_start, os.getloadavg()[0])
        results.validate()
        if args.keep or results.problems:  # a failed run's logs and warehouse are the evidence
            log.info("work directory kept: %s", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return results


def measure(results: Results, bench: BenchCorpus, tmp: Path, args: argparse.Namespace) -> None:
    """Serve the corpus; extraction first (no server busy beside it), then the flow runs."""
    with SampleSiteServer(bench.corpus) as site:
        sources_path = write_sources(tmp / "sources.yaml", site.base_url, bench)
        sources = {s.name: s for s in load_sources(sources_path)}
        results.extraction = compare_extractors(bench.sample(min(args.sample, args.n)), sources, site.base_url,
                                                args.repeats)  # fmt: skip
        results.real_extraction = compare_on_real_pages(args.repeats)
        with PrefectServer(tmp / "prefect") as prefect:
            results.prefect_startup_s = prefect.startup_seconds
            run_flows(results, tmp, sources_path, prefect.client_env(), args.dask_workers_list)
            if args.wide_hosts > 0:
                results.wide = run_wide(args.wide_hosts, args.wide_pages, args.wide_rate, tmp / "wide",
                                        prefect.client_env(), args.wide_task_runs)  # fmt: skip
                results.problems += [f"wide crawl: {problem}" for problem in results.wide.problems]


def run_flows(results: Results, tmp: Path, sources_path: Path, env: dict[str, str],
              dask_workers: tuple[int, ...] = ()) -> None:
    """Full nightly run, no-op rerun, reprocess, then reprocess on each Dask LocalCluster
    size: each a subprocess against the one server. Every reprocess re-extracts the N
    archived pages and finds them unchanged: the same work, wherever it extracts."""
    warehouse = tmp / "data" / "warehouse.duckdb"
    args = ["--sources", str(sources_path), "--warehouse", str(warehouse)]
    results.imports_s, results.imports_rss_mb = time_imports("flows.nightly", env)
    results.full = run_flow("full nightly run", "flows.nightly", args, env, tmp / "full.log")
    results.full.counts = last_run_counts(warehouse)
    results.rows = warehouse_rows(warehouse)  # what landed, even if the run then failed
    results.noop = run_flow("no-op rerun", "flows.nightly", args, env, tmp / "noop.log")
    results.noop.counts = last_run_counts(warehouse)
    results.reprocess = run_flow("reprocess", "flows.reprocess", args, env, tmp / "reprocess.log")
    results.reprocess.counts = last_run_counts(warehouse)
    for workers in dask_workers:
        run = run_flow(f"reprocess on {workers} Dask worker(s)", "flows.reprocess",
                       [*args, "--dask-workers", str(workers)], env, tmp / f"reprocess-dask-{workers}.log")  # fmt: skip
        run.counts = last_run_counts(warehouse)
        results.dask[workers] = run


def write_sources(path: Path, base_url: str, bench: BenchCorpus) -> Path:
    """The project's sources.yaml, pointed at the bench server, rate limit off, paging uncapped."""
    raw = yaml.safe_load(expand_env(SOURCES_FILE.read_text(encoding="utf-8"), {"SAMPLE_SITE_URL": base_url}))
    entries = [entry | {"rate_limit_per_second": 0, "max_listing_pages": bench.n_listing_pages[entry["name"]] + 2}
               for entry in raw["sources"] if entry["name"] in bench.n_listing_pages]  # fmt: skip
    missing = sorted(set(bench.n_listing_pages) - {entry["name"] for entry in entries})
    if missing:
        raise ValueError(f"{SOURCES_FILE} has no source for the sites {missing}")
    path.write_text(yaml.safe_dump({"sources": entries}, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.exit(main())
