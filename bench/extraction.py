"""Extraction throughput on one core: our `extract_page` against `trafilatura.extract`.

Both read the same decoded pages (decoded once, as the pipeline does, outside the timed
loop), in one process pinned to one CPU, after a warm-up pass; each figure is the median
of `repeats` passes over the whole sample, the two extractors alternating pass by pass
so that neither gets a quieter machine. trafilatura runs with its defaults (fallback
extractors on); `fast=True` is reported beside it for reference.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import trafilatura

from sample_site import Resource
from tasks.encoding import decode_html
from tasks.extract import extract_page
from tasks.records import Source

log = logging.getLogger(__name__)

WARMUP_PAGES = 10


@dataclass
class ExtractionResult:
    pages: int
    repeats: int
    cpu: int | None  # the CPU the measurement was pinned to
    ours_pages_per_s: float
    trafilatura_pages_per_s: float
    trafilatura_fast_pages_per_s: float
    ours_empty: int  # pages where ours found no body text
    trafilatura_empty: int

    @property
    def ratio(self) -> float:
        return self.ours_pages_per_s / self.trafilatura_pages_per_s if self.trafilatura_pages_per_s else 0.0


@contextmanager
def one_core() -> Iterator[int | None]:
    """Pin the calling thread to one CPU (the last one) for the block, where the OS allows it."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    previous = os.sched_getaffinity(0)
    cpu = max(previous)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, previous)


def compare_extractors(pages: list[tuple[str, str, Resource]], sources: dict[str, Source], base_url: str,
                       repeats: int = 3) -> ExtractionResult:  # fmt: skip
    """pages: (site key, path, resource) as `BenchCorpus.sample` gives them."""
    docs = [(decode_html(r.body, r.content_type).text, base_url + path, sources[key]) for key, path, r in pages]
    extractors: dict[str, Callable[[str, str, Source], str | None]] = {
        "ours": lambda html, url, source: extract_page(html, url, source).report.body_text,
        "trafilatura": lambda html, url, source: trafilatura.extract(html, url=url),
        "trafilatura_fast": lambda html, url, source: trafilatura.extract(html, url=url, fast=True),
    }
    with one_core() as cpu:
        for run in extractors.values():
            for doc in docs[:WARMUP_PAGES]:
                run(*doc)
        seconds: dict[str, list[float]] = {name: [] for name in extractors}
        empty: dict[str, int] = {}
        for _ in range(max(1, repeats)):
            for name, run in extractors.items():
                elapsed, empty[name] = _time_pass(run, docs)
                seconds[name].append(elapsed)
    rate = {name: len(docs) / statistics.median(s) for name, s in seconds.items()}
    result = ExtractionResult(len(docs), max(1, repeats), cpu, rate["ours"], rate["trafilatura"],
                              rate["trafilatura_fast"], empty["ours"], empty["trafilatura"])  # fmt: skip
    log.info("extraction on one core: ours %.1f pages/s, trafilatura %.1f (fast %.1f): %.2f×",
             result.ours_pages_per_s, result.trafilatura_pages_per_s, result.trafilatura_fast_pages_per_s,
             result.ratio)  # fmt: skip
    return result


def _time_pass(run: Callable[[str, str, Source], str | None],
               docs: list[tuple[str, str, Source]]) -> tuple[float, int]:  # fmt: skip
    """Seconds for one pass over every page, and how many pages yielded no text."""
    started = time.perf_counter()
    texts = [run(*doc) for doc in docs]
    return time.perf_counter() - started, sum(1 for text in texts if not text)
