"""Load speed of the two warehouse backends: the same extracted pages loaded into a DuckDB file
and into a DuckLake, batch by batch, the load alone timed (extraction is done beforehand).

    .venv/bin/python scripts/lake_load_bench.py --n 2000 [--batch 50] [--lake 'ducklake:postgres:<dsn>']

The pages are the benchmark's synthetic corpus (bench/corpus.py, the sample site's templates).
Without --lake a private PostgreSQL is started for the run (tests/postgres.py) and stopped
after it. Prints rows/s per backend: rows written to the data tables (reports, versions, URLs,
sections, metrics, ranks, search index) over the seconds spent in load_pages, then the
seconds of a second pass over the same pages (unchanged: nothing written).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import build_bench_corpus  # noqa: E402
from tasks import settings  # noqa: E402
from tasks.crawl.archive.store import ArchivedFetch  # noqa: E402
from tasks.pages import page_record  # noqa: E402
from tasks.records import FetchOutcome, PageRecord  # noqa: E402
from tasks.sources import expand_env, load_sources  # noqa: E402
from tests.postgres import LocalPostgres  # noqa: E402
from warehouse.backend.connect import connect  # noqa: E402
from warehouse.backend.lake import forget_instances, lake_of  # noqa: E402
from warehouse.schema.tables import data_tables  # noqa: E402
from warehouse.writer.load import load_pages  # noqa: E402

BASE = "http://127.0.0.1:8765"


def extracted(n: int) -> list[PageRecord]:
    """The corpus's n report pages, extracted as a nightly run would."""
    os.environ.setdefault("SAMPLE_SITE_URL", BASE)
    sources = {s.name: s for s in load_sources(settings.SOURCES_FILE)}
    corpus = build_bench_corpus(n)
    pages = []
    for number, (key, path, resource) in enumerate(corpus.sample(n)):
        url = expand_env(BASE) + path
        fetch = ArchivedFetch(fetch_id=number + 1, run_id="bench", source=key, url=url, final_url=url,
                              outcome=FetchOutcome.FETCHED, status=200, content_type=resource.content_type,
                              fetched_at=datetime.now(UTC), sha256=hashlib.sha256(resource.body).hexdigest(),
                              size=len(resource.body), loaded_run_id=None)  # fmt: skip
        pages.append(page_record(fetch, resource.body, sources.get(key)))
    return pages


def timed_loads(target: str, pages: list[PageRecord], batch: int) -> tuple[float, int, float]:
    """(seconds of the first load, data rows it wrote, seconds of a second, unchanged load)."""
    con = connect(target)
    try:
        rows_before = _rows(con)
        first = _load_all(con, pages, batch, lambda: None)
        rows = _rows(con) - rows_before
        second = _load_all(con, pages, batch, lambda: None)
    finally:
        con.close()
    return first, rows, second


def _load_all(con, pages: list[PageRecord], batch: int, between: Callable[[], None]) -> float:
    started = time.perf_counter()
    for i in range(0, len(pages), batch):
        load_pages(con, "bench", pages[i:i + batch], datetime.now(UTC))
        between()
    return time.perf_counter() - started


def _rows(con) -> int:
    return sum(con.execute(f"select count(*) from {table}").fetchone()[0] for table in data_tables())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="report pages")
    parser.add_argument("--batch", type=int, default=settings.BATCH_SIZE, help="pages per load transaction")
    parser.add_argument("--lake", help="ducklake:postgres:<dsn> of an empty lake (default: a private PostgreSQL)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    pages = extracted(args.n)
    print(f"{len(pages)} pages extracted in {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="lake-bench-") as tmp:
        os.chmod(tmp, 0o755)  # the private PostgreSQL's user (postgres, when run as root) must enter it
        targets = {"file": str(Path(tmp) / "warehouse.duckdb")}
        server = None
        if args.lake:
            targets["lake"] = args.lake
        else:
            server = LocalPostgres(Path(tmp) / "postgres").start()
            settings.LAKE_DATA_PATH = str(Path(tmp) / "lake-files")
            targets["lake"] = settings.LAKE_PREFIX + server.create_database("lake_bench")
        try:
            for name, target in targets.items():
                first, rows, second = timed_loads(target, pages, args.batch)
                print(f"{name:5} load {first:7.1f} s  {rows:8d} rows  {rows / first:8.0f} rows/s  "
                      f"{len(pages) / first:6.1f} pages/s; unchanged again {second:5.1f} s")
        finally:
            lake = lake_of(targets["lake"])
            if lake is not None:
                forget_instances(lake)
            if server is not None:
                server.stop()
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
