"""How fast the raw archive records pages, on SQLite and on PostgreSQL.

    python -m bench.archive [--pages 10000] [--postgres DSN]

Records `--pages` small distinct bodies (about 2.8 KB of HTML each) four ways per backend:
one thread page by page (`record`), 8 and 64 threads page by page (the crawl's fetch
threads today, and a wide crawl's: `record` commits them in groups), and 8 threads in
batches of 50 (`record_many`, a fetch batch at a time). Prints pages recorded per second. Without --postgres it starts a
private PostgreSQL (tests/postgres.py: fsync off, as the tests run it); give the DSN of a
durable server for production-like figures. Each measurement writes a new archive (a
temporary SQLite file, a schema of its own).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from tasks.crawl.archive import PostgresArchive, RawArchive
from tasks.records import FetchOutcome, FetchResult

THREADS = 8
WIDE_THREADS = 64
BATCH = 50


def pages(n: int) -> list[FetchResult]:
    """Distinct report-like pages (2-3 KB each)."""
    filler = "民政局工作总结，城乡低保标准提高至950元/人/月。" * 40
    return [FetchResult(url=f"http://bench.example/{i}.html", outcome=FetchOutcome.FETCHED, status=200,
                        body=f"<html><body><h1>报告 {i}</h1><p>{filler}{i * 7919}</p></body></html>".encode(),
                        content_type="text/html", fetched_at=datetime.now(UTC), attempts=1) for i in range(n)]  # fmt: skip


def one_thread(archive: RawArchive, batch: list[FetchResult]) -> None:
    for result in batch:
        archive.record("bench", "bench", result)


def threads_page_by_page(archive: RawArchive, batch: list[FetchResult], threads: int = THREADS) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda part: one_thread(archive, batch[part::threads]), range(threads)))


def threads_in_batches(archive: RawArchive, batch: list[FetchResult]) -> None:
    chunks = [batch[start:start + BATCH] for start in range(0, len(batch), BATCH)]
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda chunk: archive.record_many("bench", "bench", chunk), chunks))


WAYS: dict[str, Callable[[RawArchive, list[FetchResult]], None]] = {
    "1 thread, record": one_thread,
    f"{THREADS} threads, record": threads_page_by_page,
    f"{WIDE_THREADS} threads, record": lambda archive, batch: threads_page_by_page(archive, batch, WIDE_THREADS),
    f"{THREADS} threads, record_many({BATCH})": threads_in_batches,
}


def measure(open_archive: Callable[[str], RawArchive], corpus: list[FetchResult]) -> dict[str, float]:
    """Pages per second each way, each into a new archive."""
    rates = {}
    for number, (way, record) in enumerate(WAYS.items()):
        with open_archive(f"b{number}") as archive:
            started = time.perf_counter()
            record(archive, corpus)
            rates[way] = len(corpus) / (time.perf_counter() - started)
    return rates


@contextmanager
def postgres_dsn(given: str | None) -> Iterator[str]:
    """`given`, or the DSN of a private server started for the benchmark."""
    if given:
        yield given
        return
    from tests.postgres import LocalPostgres  # a benchmark may start the tests' server

    with tempfile.TemporaryDirectory(prefix="govetl-bench-pg-") as root, LocalPostgres(Path(root)) as server:
        yield server.create_database("bench_archive")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--postgres", help="libpq DSN of a server to measure (default: a private one, fsync off)")
    args = parser.parse_args(argv)
    corpus = pages(args.pages)
    with tempfile.TemporaryDirectory(prefix="govetl-bench-archive-") as tmp:
        results = {"sqlite": measure(lambda name: RawArchive(Path(tmp) / f"{name}.sqlite"), corpus)}
    with postgres_dsn(args.postgres) as dsn:
        schemas = [f"bench_{os.getpid()}_b{n}" for n in range(len(WAYS))]
        try:
            results["postgres"] = measure(lambda name: RawArchive(PostgresArchive(dsn, f"bench_{os.getpid()}_{name}")),
                                          corpus)  # fmt: skip
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    print(f"raw archive, {args.pages} pages of ~{sum(len(p.body or b'') for p in corpus) // len(corpus)} bytes: "
          "pages recorded per second")
    for backend, rates in results.items():
        print(f"  {backend:9} " + "   ".join(f"{way}: {rate:,.0f}" for way, rate in rates.items()))
    print(f"  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
