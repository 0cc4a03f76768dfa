"""Extraction throughput on one core: our `extract_page` against `trafilatura.extract`.

Both read the same decoded pages (decoded once, as the pipeline does, outside the timed
loop), in one process pinned to one CPU, after a warm-up pass; each figure is the median
of `repeats` passes over the whole sample, the two extractors alternating pass by pass
so that neither gets a quieter machine. trafilatura runs with its defaults (fallback
extractors on); `fast=True` is reported beside it for reference.

Ours runs as the pipeline runs it: compiled by mypyc where a build is current
(tasks/extract/compiled.py). The same comparison is then repeated in a child process with
GOVETL_INTERPRETED=1, so the report shows what the compilation is worth, each ratio
measured against trafilatura in its own process:

    python -m bench.extraction DOCS.pickle REPEATS    (the child; prints its result as JSON)
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import trafilatura

from sample_site import Resource
from tasks.extract.compiled import is_compiled
from tasks.crawl.encoding import decode_html
from tasks.extract import extract_page
from tasks.records import Source
from tasks.settings import PROJECT_ROOT

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
    compiled: bool = False  # ours ran from the mypyc build
    interpreted: ExtractionResult | None = None  # the same comparison, our modules interpreted

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
    result = compare_on_docs(docs, repeats)
    if result.compiled:
        result.interpreted = compare_interpreted(docs, repeats)
    return result


def compare_interpreted(docs: list[tuple[str, str, Source]], repeats: int) -> ExtractionResult | None:
    """compare_on_docs in a child process whose extractor modules run interpreted."""
    with tempfile.TemporaryDirectory(prefix="govetl-bench-docs-") as tmp:
        path = Path(tmp) / "docs.pickle"
        path.write_bytes(pickle.dumps(docs))
        child = subprocess.run([sys.executable, "-m", "bench.extraction", str(path), str(repeats)], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, env={**os.environ, "GOVETL_INTERPRETED": "1"})  # fmt: skip
    if child.returncode != 0:
        log.warning("interpreted extraction comparison failed: %s", child.stderr[-2000:])
        return None
    return ExtractionResult(**json.loads(child.stdout))


def compare_on_docs(docs: list[tuple[str, str, Source]], repeats: int = 3) -> ExtractionResult:
    """docs: (decoded html, url, source)."""
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
                              rate["trafilatura_fast"], empty["ours"], empty["trafilatura"],
                              is_compiled("tasks.extract.metrics"))  # fmt: skip
    log.info("extraction on one core (ours %s): ours %.1f pages/s, trafilatura %.1f (fast %.1f): %.2f×",
             "compiled" if result.compiled else "interpreted", result.ours_pages_per_s,
             result.trafilatura_pages_per_s, result.trafilatura_fast_pages_per_s, result.ratio)  # fmt: skip
    return result


def _time_pass(run: Callable[[str, str, Source], str | None],
               docs: list[tuple[str, str, Source]]) -> tuple[float, int]:  # fmt: skip
    """Seconds for one pass over every page, and how many pages yielded no text."""
    started = time.perf_counter()
    texts = [run(*doc) for doc in docs]
    return time.perf_counter() - started, sum(1 for text in texts if not text)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    measured = compare_on_docs(pickle.loads(Path(sys.argv[1]).read_bytes()), int(sys.argv[2]))
    print(json.dumps(asdict(measured)))


def compare_on_real_pages(repeats: int = 3) -> ExtractionResult | None:
    """The same comparison on the real pages of ../shared/real_pages (whole HTML pages and
    wrapped text openings), when they are beside the repository: None otherwise."""
    from evaluation.real import real_documents

    docs = [(doc.html, doc.url or "http://real.test/" + doc.doc_id, None) for doc in real_documents()]
    return compare_on_docs(docs, repeats) if docs else None  # type: ignore[arg-type]
