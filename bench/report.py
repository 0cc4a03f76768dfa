"""The benchmark's figures, its targets (met / not met), BENCHMARKS.md and the BENCH line."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime

from bench.corpus import BenchCorpus
from bench.extraction import ExtractionResult
from bench.flowruns import SAMPLE_SECONDS, STAGES, FlowRun
from bench.wide import WideResults
from bench.wide import markdown_section as wide_section
from tasks import settings

REAL_RATIO_TARGET = 2.5  # ours / trafilatura on the real pages (issue 16)
EXTRACTION_RATIO_TARGET = 2.0  # ours / trafilatura, pages/s on one core
ORCHESTRATION_SHARE_TARGET = 0.10  # of the full run's wall time
NOOP_FRACTION_TARGET = 0.03  # no-op rerun wall time / full run wall time
PEAK_RSS_TARGET_MB, PEAK_RSS_TARGET_N = 400.0, 10_000
LOAD_ROWS = ("reports", "sections", "metrics")  # the rows counted in load throughput
LOAD_RATE_TARGET = 50_000.0  # rows/s of the full run's load stage (issue 19)
# A province on paper (the Growth section): its columns, pages per column, and the window a
# full re-extraction or load should fit in.
PROVINCE_COLUMNS, PROVINCE_PAGES_PER_COLUMN, PROVINCE_COLUMNS_PER_SITE = 50_000, 300, 10
PROVINCE_WINDOW_H = 8.0


@dataclass
class Target:
    name: str
    figure: str
    status: str  # met | not met | not assessed


@dataclass
class Results:
    n: int
    command: str
    started: datetime
    machine: dict[str, str]
    corpus: BenchCorpus | None = None
    corpus_seconds: float = 0.0
    serving_rss_mb: float = 0.0  # benchmark process after generating the corpus
    bench_peak_rss_mb: float = 0.0  # benchmark process: corpus, site server, extractor comparison
    extraction: ExtractionResult | None = None
    real_extraction: ExtractionResult | None = None  # the same on ../shared/real_pages, when present
    prefect_startup_s: float | None = None
    imports_s: float = 0.0
    imports_rss_mb: float = 0.0  # a fresh interpreter after importing flows.nightly
    full: FlowRun | None = None
    noop: FlowRun | None = None
    reprocess: FlowRun | None = None
    rows: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    load_average: tuple[float, float] = (math.nan, math.nan)  # 1-minute, at start and at end
    wide: WideResults | None = None  # the wide crawl (bench/wide.py)
    dask: dict[int, FlowRun] = field(default_factory=dict)  # the reprocess on a LocalCluster of k workers
    cores: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))  # usable by this process

    # --- figures -----------------------------------------------------------------------------
    @property
    def runs(self) -> list[FlowRun]:
        return [r for r in (self.full, self.noop, self.reprocess) if r is not None]

    @property
    def all_runs(self) -> list[FlowRun]:
        """The runs above, then the reprocess on each Dask LocalCluster size."""
        return [*self.runs, *(self.dask[k] for k in sorted(self.dask))]

    def dask_pages_per_s(self, workers: int) -> float:
        run = self.dask.get(workers)
        return self.n / run.wall_s if run and run.exit_code == 0 and run.wall_s else math.nan

    def dask_speedup(self, workers: int) -> float:
        """The reprocess's wall time on 1 worker over that on `workers` (end to end)."""
        return self.dask_pages_per_s(workers) / self.dask_pages_per_s(1)

    @property
    def dask_speedup_2w(self) -> float:
        return self.dask_speedup(2)

    def dask_extract_speedup(self, workers: int) -> float:
        """The extract stage alone (the flow's wait for the batches): 1 worker's over `workers`'."""
        one, run = self.dask.get(1), self.dask.get(workers)
        if not one or not run or not run.timings.get("extract"):
            return math.nan
        return one.timings.get("extract", math.nan) / run.timings["extract"]

    @property
    def wide_crawl_vs_slowest(self) -> float:
        return self.wide.ratio if self.wide else math.nan

    @property
    def extract_ratio(self) -> float:
        return self.extraction.ratio if self.extraction else math.nan

    @property
    def real_ratio(self) -> float:
        return self.real_extraction.ratio if self.real_extraction else math.nan

    @property
    def orchestration_share(self) -> float:
        return self.full.share(self.full.orchestration_s) if self.full else math.nan

    @property
    def noop_fraction(self) -> float:
        return self.noop.wall_s / self.full.wall_s if self.full and self.noop else math.nan

    @property
    def reprocess_pages_per_s(self) -> float:
        return self.n / self.reprocess.wall_s if self.reprocess else math.nan

    @property
    def peak_rss_mb(self) -> float:
        return max((r.peak_rss_mb for r in self.runs), default=math.nan)

    @property
    def load_rows(self) -> int:
        return sum(self.rows.get(t, 0) for t in LOAD_ROWS)

    @property
    def load_rows_per_s(self) -> float:
        seconds = self.full.timings.get("load", 0.0) if self.full else 0.0
        return self.load_rows / seconds if seconds else math.nan

    def validate(self) -> None:
        """Record why the figures would not describe N new pages crawled, rerun and reprocessed."""
        for name, run in (("full run", self.full), ("no-op rerun", self.noop), ("reprocess", self.reprocess)):
            if run is None or run.exit_code != 0:
                self.problems.append(f"{name} did not complete" + (f" (see {run.log_path})" if run else ""))
            elif not run.timings:
                self.problems.append(f"{name} logged no 'seconds:' line (run summary format changed?)")
        if self.full and self.full.counts and self.full.counts.get("new") != self.n:
            self.problems.append(f"full run loaded {self.full.counts.get('new')} new reports, not {self.n}")
        if self.noop and self.noop.counts and self.noop.counts.get("fetched"):
            self.problems.append(f"no-op rerun fetched {self.noop.counts['fetched']} pages")
        for workers, run in sorted(self.dask.items()):
            if run.exit_code != 0:
                self.problems.append(f"{run.name} did not complete (see {run.log_path})")
            elif not run.timings.get("extract.workers"):
                self.problems.append(f"{run.name} logged no workers' extract seconds (did it run on Dask?)")
            elif run.counts and run.counts.get("unchanged") != self.n:
                self.problems.append(f"{run.name} found {run.counts.get('unchanged')} pages unchanged, not {self.n}")

    def targets(self) -> list[Target]:
        return [self._extraction_target(), self._orchestration_target(), self._noop_target(),
                self._rss_target(), self._bulk_target(), self._load_vs_extract_target(),
                self._load_rate_target()]  # fmt: skip

    def _extraction_target(self) -> Target:
        x = self.extraction
        figure = f"{x.ratio:.2f}× ({x.ours_pages_per_s:.1f} vs {x.trafilatura_pages_per_s:.1f} pages/s)" if x else "–"
        return Target("extraction ≥ 2× trafilatura's pages/s (one core)", figure,
                      _status(x is not None and x.ratio >= EXTRACTION_RATIO_TARGET, x is not None))  # fmt: skip

    def _orchestration_target(self) -> Target:
        f = self.full
        figure = f"{self.orchestration_share:.1%} ({f.orchestration_s:.1f} s of {f.wall_s:.1f} s)" if f else "–"
        return Target("Prefect orchestration ≤ 10 % of the full run", figure,
                      _status(self.orchestration_share <= ORCHESTRATION_SHARE_TARGET, f is not None))  # fmt: skip

    def _noop_target(self) -> Target:
        full, noop = self.full, self.noop
        if full is None or noop is None:
            figure, ok = "–", False
        else:
            figure, ok = f"{self.noop_fraction:.1%} ({noop.wall_s:.1f} s vs {full.wall_s:.1f} s)", True
        return Target("no-op rerun ≤ 3 % of the full run", figure, _status(self.noop_fraction <= NOOP_FRACTION_TARGET, ok))

    def _rss_target(self) -> Target:
        figure = f"{self.peak_rss_mb:.0f} MB at N = {self.n:,}"
        if self.n < PEAK_RSS_TARGET_N:
            return Target("peak RSS ≤ 400 MB at N = 10,000", figure, f"not assessed (N < {PEAK_RSS_TARGET_N:,})")
        return Target("peak RSS ≤ 400 MB at N = 10,000", figure,
                      _status(self.peak_rss_mb <= PEAK_RSS_TARGET_MB, bool(self.runs)))  # fmt: skip

    def _bulk_target(self) -> Target:
        loads, pages = self.rows.get("loads", 0), self.rows.get("reports", 0)
        most = math.ceil(pages / settings.BATCH_SIZE) if pages else 0
        figure = (f"{pages:,} pages in {loads} load transactions (≤ {self.rows.get('max_pages_per_load', 0)} pages "
                  f"each, Arrow-staged set-based SQL), {self.load_rows_per_s:,.0f} rows/s")  # fmt: skip
        return Target("loads in bulk", figure, _status(0 < loads <= most, bool(pages)))


    def _load_vs_extract_target(self) -> Target:
        name = f"load stage ≤ extract stage at N = {self.n:,} (full run)"
        timings = self.full.timings if self.full else {}
        if "load" not in timings or not timings.get("extract"):
            return Target(name, "–", "not assessed")
        load, extract = timings["load"], timings["extract"]
        return Target(name, f"load {load:.2f} s vs extract {extract:.2f} s ({load / extract:.2f}×)",
                      _status(load <= extract, True))  # fmt: skip

    def _load_rate_target(self) -> Target:
        rate, measured = self.load_rows_per_s, not math.isnan(self.load_rows_per_s)
        load_s = self.full.timings.get("load", 0.0) if self.full else 0.0
        figure = f"{rate:,.0f} rows/s ({self.load_rows:,} rows in {load_s:.2f} s)" if measured else "–"
        return Target(f"load ≥ {LOAD_RATE_TARGET:,.0f} rows/s (full run, local DuckDB file)", figure,
                      _status(rate >= LOAD_RATE_TARGET, measured))  # fmt: skip


def _status(ok: bool, measured: bool) -> str:
    return "not assessed" if not measured else ("met" if ok else "not met")


# --- output ------------------------------------------------------------------------------------
def bench_line(r: Results) -> str:
    return (f"BENCH n={r.n} extract_vs_trafilatura={r.extract_ratio:.2f} real_vs_trafilatura={r.real_ratio:.2f} "
            f"orchestration_share={r.orchestration_share:.3f} noop_fraction={r.noop_fraction:.3f} "
            f"reprocess_pages_per_s={r.reprocess_pages_per_s:.1f} peak_rss_mb={r.peak_rss_mb:.0f} "
            f"dask_speedup_2w={r.dask_speedup_2w:.2f} load_rows_per_s={r.load_rows_per_s:.0f} "
            f"wide_crawl_vs_slowest={r.wide_crawl_vs_slowest:.2f}")  # fmt: skip


def summary_lines(r: Results) -> list[str]:
    lines = [f"benchmark at N={r.n:,} on {r.machine['cpu']} ({r.machine['cores']})"]
    lines += [f"  {run.name}: {run.wall_s:.1f} s wall, peak RSS {run.peak_rss_mb:.0f} MB, "
              + ", ".join(f"{k} {v:.1f}" for k, v in run.timings.items()) for run in r.all_runs]  # fmt: skip
    if r.dask:
        lines.append("  reprocess pages/s in process / on k Dask workers: " + f"{r.reprocess_pages_per_s:.1f} / "
                     + ", ".join(f"{k}: {r.dask_pages_per_s(k):.1f} ({r.dask_speedup(k):.2f}× 1 worker)"
                                 for k in sorted(r.dask)) + f" ({r.cores} cores: ceiling about {r.cores}×)")  # fmt: skip
    lines += [f"  {t.name}: {t.figure}: {t.status}" for t in r.targets()]
    if r.wide:
        w = r.wide
        lines.append(f"  wide crawl, {w.hosts:,} hosts × {w.pages} pages at {w.rate:g}/s: {w.crawl_s:.1f} s, "
                     f"{w.ratio:.2f}× the slowest host's {w.slowest_minimum_s:.1f} s; {w.requests_per_s:.0f} requests/s, "
                     f"peak {w.peak_threads} threads, {w.peak_connections} connections")  # fmt: skip
    lines += [f"  INVALID: {p}" for p in r.problems]
    return lines


def render_markdown(r: Results) -> str:
    parts = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` on {r.started:%Y-%m-%d %H:%M %Z}: `{r.command}` "
        f"(from the project root, with `.venv/bin/python`). Every figure below comes from that one run; "
        f"re-run it to refresh this file. Benchmarks print figures; no test asserts a timing.",
        "",
        *([f"**Invalid run:** {p}" for p in r.problems] + [""] if r.problems else []),
        "## Targets", "",
        "| target | measured | status |", "|---|---|---|",
        *[f"| {t.name} | {t.figure} | **{t.status}** |" for t in r.targets()],
        "",
        *_time_section(r),
        *_runs_section(r),
        *_extraction_section(r),
        *_load_section(r),
        *_dask_section(r),
        *(wide_section(r.wide) if r.wide else []),
        *_growth_section(r),
        *_corpus_section(r),
        *_machine_section(r),
        *_method_section(r),
    ]
    return "\n".join(parts).rstrip() + "\n"


def _time_section(r: Results) -> list[str]:
    out = []
    for run, title in ((r.full, f"full nightly run over {r.n:,} new pages"), (r.noop, "no-op rerun")):
        if run is None:
            continue
        out += [f"## Where the time goes: {title} ({run.wall_s:.1f} s wall)", "",
                "| part | seconds | share of wall time |", "|---|---:|---:|"]  # fmt: skip
        out += [f"| {name} | {seconds:.2f} | {run.share(seconds):.1%} |" for name, seconds in _breakdown(r, run)]
        out.append("")
    return out


def _breakdown(r: Results, run: FlowRun) -> list[tuple[str, float]]:
    """Stages as the flow timed them, then orchestration split as far as the figures allow."""
    rows = [(stage, run.timings.get(stage, 0.0)) for stage in STAGES]
    total = run.timings.get("total")
    imports = min(r.imports_s, run.wall_s)
    rows.append(("**orchestration** (wall − stages)", run.orchestration_s))
    rows.append(("  ↳ interpreter start + imports (`python -c 'import flows.nightly'`)", imports))
    if total is not None:
        rows.append(("  ↳ flow-run setup and teardown (outside the summary's `total`)",
                     max(0.0, run.wall_s - total - imports)))  # fmt: skip
        rows.append(("  ↳ inside the run, outside the stages (task runs, batching)", max(0.0, total - run.stage_s)))
    return rows


def _runs_section(r: Results) -> list[str]:
    out = ["## Runs", "",
           "| run | exit | wall s | peak RSS MB (tasks / after) | " + " | ".join(STAGES) + " | summary total | outcome |",
           "|---|---:|---:|---:|" + "---:|" * (len(STAGES) + 1) + "---|"]  # fmt: skip
    for run in r.all_runs:
        stages = " | ".join(f"{run.timings.get(s, 0.0):.2f}" for s in STAGES)
        outcome = ", ".join(f"{k} {run.counts[k]}" for k in ("fetched", "not_modified", "new", "unchanged",
                                                              "changed", "rejected", "failed") if run.counts.get(k))  # fmt: skip
        out.append(f"| {run.name} | {run.exit_code} | {run.wall_s:.1f} | {run.peak_rss_mb:.0f} "
                   f"({run.rss_tasks_mb:.0f} / {run.rss_after_tasks_mb:.0f}) | {stages} | "
                   f"{run.timings.get('total', 0.0):.2f} | {outcome or '–'} |")  # fmt: skip
    out += ["", "Peak RSS is the kernel's high-water mark; in brackets the sampled peaks while task runs were "
            "still finishing (crawl, extract, load) and after the last one (finalise: fetch log, data-quality "
            "checks, snapshot; then teardown)."]
    if r.dask:
        out[-1] += (" Of a run on Dask, the flow's process only: its workers are processes of their own; the "
                    "peak-RSS target is assessed on the in-process runs.")
    if r.imports_rss_mb:
        out[-1] += (f" Of any peak, {r.imports_rss_mb:.0f} MB is the interpreter with the flow's imports alone "
                    "(Prefect, DuckDB, nanoarrow, lxml), before a page or the warehouse is touched.")
    if r.reprocess and r.reprocess.timings.get("extract"):
        out += ["", f"Reprocessing from the raw archive (no network): **{r.reprocess_pages_per_s:.1f} pages/s** end to "
                f"end ({r.n:,} pages in {r.reprocess.wall_s:.1f} s); its extract stage alone ran at "
                f"{r.n / r.reprocess.timings['extract']:.1f} pages/s."]  # fmt: skip
    return [*out, ""]


def _extraction_section(r: Results) -> list[str]:
    x = r.extraction
    if x is None:
        return []
    how = "compiled by mypyc (tasks/extract/compiled.py)" if x.compiled else "interpreted (no current mypyc build)"
    lines = ["## Extraction on one core", "",
             f"{x.pages} pages sampled evenly from the corpus, decoded once, warm, one process pinned to CPU {x.cpu}; "
             f"median of {x.repeats} timed passes.", "",
             "| extractor | pages/s | pages with no text |", "|---|---:|---:|",
             f"| ours: `tasks.extract.extract_page` (metadata, outline, metrics, ranks), {how} | "
             f"{x.ours_pages_per_s:.1f} | {x.ours_empty} |",
             f"| `trafilatura.extract` (defaults) | {x.trafilatura_pages_per_s:.1f} | {x.trafilatura_empty} |",
             f"| `trafilatura.extract(fast=True)`, for reference | {x.trafilatura_fast_pages_per_s:.1f} | – |",
             "", f"Ratio ours / trafilatura: **{x.ratio:.2f}×**.", ""]  # fmt: skip
    real = r.real_extraction
    if real is not None:
        lines += [f"On the real pages of `../shared/real_pages` ({real.pages} pages of sites nobody here built: whole "
                  f"HTML pages and wrapped report openings; same method): ours {real.ours_pages_per_s:.1f} pages/s, "
                  f"trafilatura {real.trafilatura_pages_per_s:.1f}: **{real.ratio:.2f}×** (target ≥ "
                  f"{REAL_RATIO_TARGET:g}×: {'met' if real.ratio >= REAL_RATIO_TARGET else 'not met'}).", ""]  # fmt: skip
    i = x.interpreted
    if i is not None:
        lines += [f"The same comparison in a child process with `GOVETL_INTERPRETED=1` (our modules interpreted, "
                  f"same pages): ours {i.ours_pages_per_s:.1f} pages/s, trafilatura {i.trafilatura_pages_per_s:.1f}: "
                  f"**{i.ratio:.2f}×**. Compiling is worth {x.ratio / i.ratio - 1:.0%} more pages/s (the ratio of the "
                  f"two ratios: trafilatura's pace in each process cancels the machine's drift between them); both "
                  f"builds extract the same records (tests/test_compiled.py).", ""]  # fmt: skip
    return lines


def _load_section(r: Results) -> list[str]:
    if not r.rows:
        return []
    assert r.full is not None, "warehouse rows are counted after the full run"
    load_s = r.full.timings.get("load", 0.0)
    counts = ", ".join(f"{t} {r.rows.get(t, 0):,}" for t in (*LOAD_ROWS, "ranks"))
    return ["## Load", "",
            f"Full run: {counts}; {r.load_rows:,} rows (reports + sections + metrics) in {load_s:.2f} s of load "
            f"stage = **{r.load_rows_per_s:,.0f} rows/s**, in {r.rows.get('loads', 0)} load transactions of at most "
            f"{r.rows.get('max_pages_per_load', 0)} pages (BATCH_SIZE {settings.BATCH_SIZE}).", ""]  # fmt: skip


def _dask_section(r: Results) -> list[str]:
    if not r.dask:
        return []
    base = r.reprocess
    rows = []
    if base is not None:
        rows.append(f"| in the flow's process | {base.wall_s:.1f} | {r.reprocess_pages_per_s:.1f} | – | 1.00× | "
                    f"{base.timings.get('extract', math.nan):.2f} | – | – | {base.timings.get('load', math.nan):.2f} |")  # fmt: skip
    for k in sorted(r.dask):
        run = r.dask[k]
        vs_here = r.dask_pages_per_s(k) / r.reprocess_pages_per_s if base else math.nan
        rows.append(f"| {k} Dask worker{'s' if k > 1 else ''} | {run.wall_s:.1f} | {r.dask_pages_per_s(k):.1f} | "
                    f"**{r.dask_speedup(k):.2f}×** | {vs_here:.2f}× | {run.timings.get('extract', math.nan):.2f} | "
                    f"{r.dask_extract_speedup(k):.2f}× | {run.timings.get('extract.workers', math.nan):.2f} | "
                    f"{run.timings.get('load', math.nan):.2f} |")  # fmt: skip
    one = r.dask.get(1)
    startup = (f" The 1-worker run's wall time over the in-process one's, {one.wall_s - base.wall_s:+.1f} s, is "
               "about what starting a LocalCluster, shipping each batch's pages to it and collecting the results "
               "costs: a fixed cost, which N pages of extraction must outweigh before more workers shorten the "
               "run (the extract stage alone shows the scaling sooner)." if one and base else "")  # fmt: skip
    return [f"## Extraction on Dask: reprocess of {r.n:,} pages on {', '.join(map(str, sorted(r.dask)))} workers", "",
            "`python -m flows.reprocess --sources … --warehouse … --dask-workers k`: the reprocess above again (every "
            "archived page extracted anew and found unchanged: the same work), its extract batches run as Prefect "
            "task runs on a Dask LocalCluster of k single-threaded worker processes started for the run "
            "(flows/cluster.py). Reading the archive, loading (one writer) and Prefect's flow stay in the flow's "
            "process. Wall time is the whole subprocess, the cluster's start included; `extract` is the flow's "
            "wait for the batches' results, `workers' extract` the workers' own seconds added up.", "",
            "| where extract batches run | wall s | pages/s | speed-up vs 1 worker | vs in-process | extract s "
            "(waiting) | extract speed-up vs 1 worker | workers' extract s | load s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, "",
            f"**This machine has {r.cores} usable core{'s' if r.cores > 1 else ''}, "
            f"so the ceiling on the speed-up is about {r.cores}×**: workers beyond the cores share them, and the "
            "flow's own process (archive reads, loading, task-run bookkeeping) competes with the workers for the "
            f"same cores.{startup}", ""]  # fmt: skip


def _growth_section(r: Results) -> list[str]:
    """How cost grows with pages, hosts and workers, and a province on paper, from this run's figures."""
    full = r.full
    if full is None or not full.timings or not r.n:
        return []
    t = full.timings
    ms = {stage: 1000 * t.get(stage, 0.0) / r.n for stage in ("discover", "fetch", "extract", "load")}
    rows_per_page = r.load_rows / r.n if r.load_rows else math.nan
    lines = ["## Growth", "",
             "How the cost grows, read off the figures above (the arithmetic is done by `bench/report.py` from "
             "this run's measurements; re-running the benchmark redoes it).", "",
             f"**With pages.** Per page of the full run: discover + fetch {ms['discover'] + ms['fetch']:.2f} ms "
             f"(loopback, rate limit off), extract {ms['extract']:.2f} ms, load {ms['load']:.2f} ms "
             f"({rows_per_page:.0f} rows a page at {r.load_rows_per_s:,.0f} rows/s). Extracting and loading are "
             "linear in the pages: each page is extracted alone, and the load commits in transactions of a bounded "
             f"size (LOAD_TRANSACTION_ROWS {settings.LOAD_TRANSACTION_ROWS:,} rows), so N pages cost about N × "
             f"{ms['extract'] + ms['load']:.2f} ms of extract + load on one core: "
             f"{_hours(1e6 * (ms['extract'] + ms['load']) / 1000)} a million pages. A nightly run costs what is new "
             f"or changed: the no-op rerun above took {r.noop_fraction:.1%} of the full run's wall time."]  # fmt: skip
    lines.append("")
    w = r.wide
    if w is not None and w.requests:
        cpu_ms = 1000 * w.crawl_cpu_s / w.requests if not math.isnan(w.crawl_cpu_s) else math.nan
        lines += [f"**With sources and hosts.** The wide crawl above ({w.hosts:,} hosts × {w.pages} pages at "
                  f"{w.rate:g} request/s each) took {w.ratio:.2f}× its slowest host's own minimum, with at most "
                  f"{w.peak_threads} threads and {w.peak_connections} connections open: hosts are crawled side by "
                  "side, so the crawl's wall time is that of the slowest host (its requests / its rate), not the "
                  f"sum over hosts ({w.sum_of_minimums_s:,.0f} s here), and threads and connections are bounded by "
                  f"settings, not by the number of hosts. What does grow with hosts is CPU: {cpu_ms:.2f} ms of the "
                  f"flow's process per request, so one flow process (one core's worth of Python) keeps up with about "
                  f"{1000 / cpu_ms:,.0f} requests/s: at 1 request/s per host, that many hosts at once.", ""]  # fmt: skip
    one, two = r.dask.get(1), r.dask.get(2)
    efficiency = r.dask_extract_speedup(2) / 2
    if one and two:
        lines += [f"**With workers.** Extraction is CPU-bound and pure (a batch's pages in, its records out), so "
                  f"it can use as many cores as there are: on 2 workers the extract stage ran "
                  f"{r.dask_extract_speedup(2):.2f}× as fast as on 1 ({efficiency:.0%} parallel efficiency on this "
                  f"{r.cores}-core machine, where the flow's process and anything else running share the cores), "
                  f"the whole reprocess {r.dask_speedup_2w:.2f}× (`dask_speedup_2w`: the cluster's start-up is a "
                  "fixed cost, which weighs less as N grows). Fetching is not a matter of workers: it is I/O bound "
                  "and each host's pace is set by its rate limit, so it stays in the flow's process, where "
                  "politeness is kept per host. Loading has one writer per warehouse file "
                  f"({r.load_rows_per_s:,.0f} rows/s here): with enough workers it becomes the limit, and past it "
                  "the way on is several writers, which DuckLake on a PostgreSQL catalog allows (runs of different "
                  "sources load side by side).", ""]  # fmt: skip
    cpu_ms = 1000 * w.crawl_cpu_s / w.requests if w is not None and w.requests else math.nan
    lines += _province(r, ms, rows_per_page, efficiency, cpu_ms)
    return lines


def _province(r: Results, ms: dict[str, float], rows_per_page: float, efficiency: float,
              request_cpu_ms: float) -> list[str]:  # fmt: skip
    """A province on paper: PROVINCE_COLUMNS columns of PROVINCE_PAGES_PER_COLUMN pages."""
    pages = PROVINCE_COLUMNS * PROVINCE_PAGES_PER_COLUMN
    window_s = PROVINCE_WINDOW_H * 3600
    extract_core_s = pages * ms["extract"] / 1000
    workers = max(1, math.ceil(extract_core_s / window_s))  # cores adding up fully
    at_measured = (f"; {math.ceil(extract_core_s / efficiency / window_s)} at the {efficiency:.0%} parallel "
                   "efficiency measured here" if 0 < efficiency < 1 else "")  # fmt: skip
    load_s = pages * rows_per_page / r.load_rows_per_s if r.load_rows_per_s > 0 else math.nan
    writers = max(1, math.ceil(load_s / window_s)) if not math.isnan(load_s) else 1
    sites = PROVINCE_COLUMNS // PROVINCE_COLUMNS_PER_SITE
    site_pages = PROVINCE_COLUMNS_PER_SITE * PROVINCE_PAGES_PER_COLUMN
    c = r.corpus
    stored = c.corpus.packed_bytes() / c.n_pages if c and c.n_pages else math.nan  # zlib, as the archive keeps them
    revalidate_per_night = pages * 24 / settings.REVALIDATE_AFTER_HOURS
    return ["**A province, on paper.** Say {:,} columns of ~{} pages: {:,} pages, on ~{:,} sites of {} columns "
            "each (an assumption; the hosts are what politeness counts).".format(
                PROVINCE_COLUMNS, PROVINCE_PAGES_PER_COLUMN, pages, sites, PROVINCE_COLUMNS_PER_SITE), "",
            "| | from this run's figures | so |", "|---|---|---|",
            f"| re-extract everything (a parser upgrade) | {pages:,} × {ms['extract']:.2f} ms = "
            f"{_hours(extract_core_s)} of one core | **{workers} Dask worker cores** to do it within "
            f"{PROVINCE_WINDOW_H:g} h{at_measured} |",
            f"| load it | {pages:,} pages × {rows_per_page:.0f} rows at {r.load_rows_per_s:,.0f} rows/s = "
            f"{_hours(load_s)} for one writer | {writers} writer(s) within {PROVINCE_WINDOW_H:g} h: "
            f"{'one DuckDB file keeps up' if writers == 1 else 'a DuckLake on a PostgreSQL catalog, runs per group of sources loading side by side'} |",
            f"| first crawl | ~{site_pages:,} pages a site at 1 request/s | ≈ {_hours(site_pages)}: the slowest "
            f"site sets the wall time, {sites:,} sites crawled side by side: {sites:,} requests/s overall, "
            f"≈ {sites * request_cpu_ms / 1000:.1f} cores of crawling at the {request_cpu_ms:.2f} ms a request "
            "measured in the wide crawl |",
            f"| nightly re-checks | every page each {settings.REVALIDATE_AFTER_HOURS:g} h: ~{revalidate_per_night:,.0f} "
            f"conditional GETs a night | mostly 304s; only new and changed pages are extracted and loaded |",
            f"| raw archive | ~{stored / 1e3:.1f} kB a page compressed × {pages:,} = ~{pages * stored / 1e9:,.0f} GB "
            f"| the archive on PostgreSQL (fetch log, frontier, bodies) every worker reaches; the lake's data files "
            "on object storage |" if not math.isnan(stored) else "| raw archive | – | – |",
            "", "So: fetching in flow processes, one per group of sites (a host in one group only, so that its "
            "politeness is kept in one process), as many groups as the crawl's CPU above asks; extraction on a Dask cluster sized by the table above; a DuckLake with its catalog on "
            "PostgreSQL and its data path on object storage, loaded by one writer per run, several runs at once "
            "when one writer's rows/s no longer fits the window.", ""]  # fmt: skip


def _hours(seconds: float) -> str:
    if math.isnan(seconds):
        return "–"
    return f"{seconds / 3600:,.1f} h" if seconds >= 3600 else f"{seconds / 60:,.1f} min"


def _corpus_section(r: Results) -> list[str]:
    c = r.corpus
    if c is None:
        return []
    per_site = ", ".join(f"{s.key} {len(s.articles):,} ({c.n_listing_pages[s.key]} listing pages)" for s in c.sites)
    return ["## Corpus", "",
            f"{c.n_pages:,} report pages generated by `bench/corpus.py` in {r.corpus_seconds:.1f} s: {per_site}; "
            f"{c.sites[0].column.per_page} links per listing page. {c.raw_bytes / 1e6:.1f} MB of rendered pages, "
            f"held zlib-compressed in {c.corpus.packed_bytes() / 1e6:.1f} MB. Benchmark process (corpus, loopback "
            f"site server, extractor comparison): {r.serving_rss_mb:.0f} MB resident after generating, "
            f"{r.bench_peak_rss_mb:.0f} MB peak.", ""]  # fmt: skip


def _machine_section(r: Results) -> list[str]:
    start, end = r.load_average
    return ["## Machine", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in r.machine.items()],
            f"| load average (1 min) at start / end | {start:.2f} / {end:.2f} (anything else running shares the cores) |",
            ""]  # fmt: skip


def _method_section(r: Results) -> list[str]:
    startup = f"{r.prefect_startup_s:.1f} s" if r.prefect_startup_s is not None else "–"
    return ["## Method", "",
            "- Each flow runs as `python -m flows.nightly|flows.reprocess --sources … --warehouse …` in its own "
            "subprocess against one Prefect server the benchmark started beforehand (its start-up, "
            f"{startup}, is not in any run) and stops afterwards. The sources file is the project's, pointed at "
            "the loopback server with `rate_limit_per_second: 0` and listing pagination uncapped.",
            "- Wall time is measured around the subprocess. Stage seconds are the flow's own "
            "(`summary.timings`, the run summary's `seconds:` line). Orchestration is wall time minus the "
            "stages (discover, fetch, extract, load, finalise): interpreter start and imports, Prefect's flow "
            "and task engine, and whatever the stages do not time.",
            "- Peak RSS is each flow subprocess's own high-water mark (VmHWM, read from /proc every "
            f"{SAMPLE_SECONDS} s with VmRSS, which tells the stages apart). Not `ru_maxrss`: Linux "
            "counts in it the benchmark process's memory the child was forked with.",
            "- Attribution limits of the flow's timers: `discover` runs until the last source's discovery is "
            "over, so downloads of sources whose discovery finished early run inside it; the crawl's task "
            "overhead (CRAWL_TASKS task runs) is inside those stages, extract/load task overhead is not "
            "(their seconds are timed inside the task functions); `finalise` includes the fetch-log copy, the "
            "data-quality checks and the warehouse snapshot copy.",
            "- To look inside orchestration, profile one flow against a Prefect server: "
            "`python -m cProfile -o reprocess.prof -m flows.reprocess --sources … --warehouse …`.",
            ""]  # fmt: skip
