"""Measure the search index: load cost and index cost per 1,000 sections, query latency.

    python -m bench.search --sections 20000 [--seeds ../shared/seeds]

Sections are the paragraphs of the seed reports (real government prose), repeated with a
varying suffix; reports of 40 sections are loaded in batches of BATCH_SIZE pages, as the flow does.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from tasks.records import Section
from tasks import settings
from tasks.settings import PROJECT_ROOT
from warehouse.backend.connect import connect
from warehouse.writer.load import load_pages
from warehouse.writer.search import rebuild_search_index
from tests.reports import T0, make_page
from warehouse.backend.tx import one_row

log = logging.getLogger(__name__)

QUERIES = ("养老床位", "城乡低保标准", "殡葬改革", "社会救助 资金", "婚姻登记", "残疾人两项补贴")
SECTIONS_PER_REPORT, PAGES_PER_BATCH = 40, settings.BATCH_SIZE


def paragraphs(seeds: Path) -> list[str]:
    lines = [line.strip() for path in sorted(seeds.glob("*.txt"))
             for line in path.read_text("utf-8").splitlines()]
    return [line for line in lines if len(line) >= 10]


def synthetic_pages(texts: list[str], n_sections: int) -> list:
    pages = []
    for r in range(n_sections // SECTIONS_PER_REPORT):
        key = f"BENCH-{r:06d}"
        sections = [Section(key, str(i), None, 1, str(i), f"第{i}部分",
                            f"{texts[(r * SECTIONS_PER_REPORT + i) % len(texts)]} 编号{r}", i)
                    for i in range(SECTIONS_PER_REPORT)]
        pages.append(make_page(key, body=key, sections=sections, metrics=[], ranks=[]))
    return pages


def run(n_sections: int, seeds: Path) -> dict[str, float]:
    pages = synthetic_pages(paragraphs(seeds), n_sections)
    n = len(pages) * SECTIONS_PER_REPORT
    with tempfile.TemporaryDirectory() as tmp:
        con = connect(Path(tmp) / "bench.duckdb")
        started = time.perf_counter()
        for i in range(0, len(pages), PAGES_PER_BATCH):
            load_pages(con, "bench", pages[i:i + PAGES_PER_BATCH], T0)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        rebuild_search_index(con)  # the index step alone, over every section
        index_s = time.perf_counter() - started
        (words,) = one_row(con, "select sum(n_terms) from search_sections")
        latencies = []
        for q in QUERIES:
            started = time.perf_counter()
            con.execute("select * from search(?) limit 10", [q]).fetchall()
            latencies.append(time.perf_counter() - started)
        con.close()
    return {"sections": n, "load_ms_per_1000": 1000 * load_s / n * 1000,
            "index_ms_per_1000": 1000 * index_s / n * 1000, "words_per_section": words / n,
            "query_ms_median": 1000 * statistics.median(latencies),
            "query_ms_max": 1000 * max(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", type=int, default=20_000)
    parser.add_argument("--seeds", type=Path, default=PROJECT_ROOT.parent / "shared" / "seeds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("warehouse").setLevel(logging.WARNING)
    for name, value in run(args.sections, args.seeds).items():
        log.info("%-22s %10.1f", name, value)


if __name__ == "__main__":
    main()
