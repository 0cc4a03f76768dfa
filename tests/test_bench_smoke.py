"""Smoke test of `make bench`: the whole benchmark at a tiny N prints its BENCH line.

Benchmarks print figures; this asserts only that the instrument runs end to end and
reports every key, never a timing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

BENCH_KEYS = ("n", "extract_vs_trafilatura", "real_vs_trafilatura", "orchestration_share", "noop_fraction",
              "reprocess_pages_per_s", "peak_rss_mb", "dask_speedup_2w", "load_rows_per_s",
              "wide_crawl_vs_slowest")  # fmt: skip


@pytest.mark.timeout(600)
def test_benchmark_runs_end_to_end_and_prints_every_figure(tmp_path: Path):
    out = tmp_path / "BENCHMARKS.md"
    done = subprocess.run([sys.executable, "-m", "bench.run", "--n", "20", "--out", str(out), "--sample", "10",
                           "--repeats", "1", "--wide-hosts", "20", "--wide-pages", "2", "--wide-rate", "10",
                           "--wide-task-runs", "20", "--dask-workers-list", "1,2"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=570)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("BENCH "), done.stdout[-2000:]
    figures = dict(item.split("=", 1) for item in last.split()[1:])
    assert tuple(figures) == BENCH_KEYS
    assert figures["n"] == "20"
    assert all(re.fullmatch(r"\d+(\.\d+)?", value) for value in figures.values()), last
    report = out.read_text(encoding="utf-8")
    for heading in ("## Targets", "## Where the time goes", "## Extraction on Dask", "## A wide crawl", "## Growth",
                    "## Machine", "## Method"):
        assert heading in report
    for target in ("load stage ≤ extract stage at N = 20", "load ≥ 50,000 rows/s"):
        assert target in report
    assert "ceiling on the speed-up is about" in report
