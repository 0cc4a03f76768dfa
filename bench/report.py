"""The benchmark's figures, its targets (met / not met), BENCHMARKS.md and the BENCH line."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from bench.corpus import BenchCorpus
from bench.extraction import ExtractionResult
from bench.flowruns import SAMPLE_SECONDS, STAGES, FlowRun
from tasks import settings

REAL_RATIO_TARGET = 2.5  # ours / trafilatura on the real pages (issue 16)
EXTRACTION_RATIO_TARGET = 2.0  # ours / trafilatura, pages/s on one core
ORCHESTRATION_SHARE_TARGET = 0.10  # of the full run's wall time
NOOP_FRACTION_TARGET = 0.03  # no-op rerun wall time / full run wall time
PEAK_RSS_TARGET_MB, PEAK_RSS_TARGET_N = 400.0, 10_000
LOAD_ROWS = ("reports", "sections", "metrics")  # the rows counted in load throughput


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

    # --- figures -----------------------------------------------------------------------------
    @property
    def runs(self) -> list[FlowRun]:
        return [r for r in (self.full, self.noop, self.reprocess) if r is not None]

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

    def targets(self) -> list[Target]:
        return [self._extraction_target(), self._orchestration_target(), self._noop_target(),
                self._rss_target(), self._bulk_target()]  # fmt: skip

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


def _status(ok: bool, measured: bool) -> str:
    return "not assessed" if not measured else ("met" if ok else "not met")


# --- output ------------------------------------------------------------------------------------
def bench_line(r: Results) -> str:
    return (f"BENCH n={r.n} extract_vs_trafilatura={r.extract_ratio:.2f} real_vs_trafilatura={r.real_ratio:.2f} "
            f"orchestration_share={r.orchestration_share:.3f} noop_fraction={r.noop_fraction:.3f} "
            f"reprocess_pages_per_s={r.reprocess_pages_per_s:.1f} peak_rss_mb={r.peak_rss_mb:.0f}")  # fmt: skip


def summary_lines(r: Results) -> list[str]:
    lines = [f"benchmark at N={r.n:,} on {r.machine['cpu']} ({r.machine['cores']})"]
    lines += [f"  {run.name}: {run.wall_s:.1f} s wall, peak RSS {run.peak_rss_mb:.0f} MB, "
              + ", ".join(f"{k} {v:.1f}" for k, v in run.timings.items()) for run in r.runs]  # fmt: skip
    lines += [f"  {t.name}: {t.figure}: {t.status}" for t in r.targets()]
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
    for run in r.runs:
        stages = " | ".join(f"{run.timings.get(s, 0.0):.2f}" for s in STAGES)
        outcome = ", ".join(f"{k} {run.counts[k]}" for k in ("fetched", "not_modified", "new", "unchanged",
                                                              "changed", "rejected", "failed") if run.counts.get(k))  # fmt: skip
        out.append(f"| {run.name} | {run.exit_code} | {run.wall_s:.1f} | {run.peak_rss_mb:.0f} "
                   f"({run.rss_tasks_mb:.0f} / {run.rss_after_tasks_mb:.0f}) | {stages} | "
                   f"{run.timings.get('total', 0.0):.2f} | {outcome or '–'} |")  # fmt: skip
    out += ["", "Peak RSS is the kernel's high-water mark; in brackets the sampled peaks while task runs were "
            "still finishing (crawl, extract, load) and after the last one (finalise: fetch log, data-quality "
            "checks, snapshot; then teardown)."]
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
            "- Attribution limits of the flow's timers: `discover` runs from submitting discovery to the last "
            "fetch batch being submitted, so fetch batches of sources whose discovery finished early run inside "
            "it; discover/fetch task overhead is inside those stages, extract/load task overhead is not "
            "(their seconds are timed inside the task functions); `finalise` includes the fetch-log copy, the "
            "data-quality checks and the warehouse snapshot copy.",
            "- To look inside orchestration, profile one flow against a Prefect server: "
            "`python -m cProfile -o reprocess.prof -m flows.reprocess --sources … --warehouse …`.",
            ""]  # fmt: skip
