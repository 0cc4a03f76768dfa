"""Rebuild the warehouse from the raw archive, with its version history: no network.

    python -m flows.rebuild --warehouse data/warehouse.duckdb [--archive DIR|postgres:DSN] [--sources sources.yaml]

The command a damaged warehouse names (warehouse/backend/rebuild.py: check_warehouse). Every
archived fetch that brought a page (outcome fetched) is extracted again and loaded in fetch order, a
batch never holding two fetches of one URL nor fetches of two runs, so each page's
successive contents become successive versions, dated by their fetches, and a page that
took a 索引号, changed it or lost its page is told as the nights told it. Then the fetch log,
the data-quality checks and a `runs` row (parameters.mode = rebuild). The new file replaces
the old one in one rename; the old one is kept beside it (`.damaged-<time>`), and the
archive's loaded marks are given to the rebuild's run, so the next nightly run loads only
what is new. The analysts' snapshot is published again.

What the archive never held is not brought back: the runs ledger before the rebuild (the
rebuild's run stands for them), data-quality results of earlier runs, and versions of pages
whose bodies were fetched before the archive existed.

A plain command rather than a Prefect flow, on purpose: it is the repair an operator runs
by hand when a night failed on a damaged file, one sequential writer with nothing to
schedule, retry or watch, and it should work whether or not a Prefect server does (a
temporary one costs seconds and ~200 MB). It takes the run lock, so no nightly run
overlaps it, and prints one line: what it rebuilt, or why it could not (exit 1).
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from flows.runner import archive_location
from tasks import settings
from tasks.crawl.archive import ArchivedFetch, ArchiveError, RawArchive
from tasks.crawl.runlock import RunLockedError, run_lock
from tasks.pages import page_record
from tasks.records import FetchOutcome, PageRecord, Source
from tasks.sources import SourceConfigError, read_sources
from tasks.steps import load_isolating
from warehouse.backend.connect import snapshot
from warehouse.backend.errors import WarehouseError
from warehouse.backend.lake import LakeError, is_lake, lake_of
from warehouse.backend.rebuild import RebuildResult, rebuild_warehouse

log = logging.getLogger(__name__)


def rebuild(warehouse_path: str | Path, archive: str | None = None,
            sources_file: str | Path = settings.SOURCES_FILE, batch_size: int = settings.BATCH_SIZE) -> RebuildResult:
    """Rebuild the warehouse at `warehouse_path` from its raw archive (module doc); `archive`
    is the --archive setting (a directory, postgres:<libpq dsn>; None: GOVETL_ARCHIVE, else
    beside the warehouse)."""
    if is_lake(warehouse_path):  # its files and catalog are PostgreSQL's and the store's to keep, with their snapshots
        raise LakeError(f"{lake_of(warehouse_path)} is a lake, which is not rebuilt from the archive: restore its "
                        "PostgreSQL catalog (and data path) from their backups, or read an earlier snapshot (AT (VERSION => n))")
    archive_file = archive_location(archive, str(warehouse_path))
    if not archive_file.exists():
        raise FileNotFoundError(f"no raw archive at {archive_file}: nothing to rebuild the warehouse from "
                                "(--archive names the directory holding archive.sqlite, or postgres:<libpq dsn>)")
    sources = {s.name: s for s in read_sources(sources_file)}  # disabled ones too: their pages are archived
    started = datetime.now(UTC)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-rebuild-{uuid.uuid4().hex[:6]}"
    with run_lock(warehouse_path), RawArchive(archive_file) as raw:
        fetched = [f for f in map(_archived, raw.fetch_log_after(None)) if f is not None]
        result = rebuild_warehouse(
            warehouse_path, _pages(raw, fetched, sources, batch_size), lambda: raw.fetch_log_after(None),
            run_id=run_id, parameters={"warehouse_path": str(warehouse_path), "archive": str(archive_file),
                                       "sources_file": str(sources_file)},
            load=load_isolating, now=started)  # fmt: skip
        raw.forget_loads(raw.loaded_run_ids())  # loaded into the warehouse that is gone
        raw.mark_loaded([f.fetch_id for f in fetched], run_id)
        snapshot(warehouse_path)
    return result


def _archived(row: dict) -> ArchivedFetch | None:
    """A fetch-log row of the archive as the loader's input, if it brought a page."""
    if row["outcome"] != FetchOutcome.FETCHED:
        return None
    return ArchivedFetch(fetch_id=row["fetch_id"], run_id=row["run_id"], source=row["source"], url=row["url"],
                         final_url=row["final_url"], outcome=FetchOutcome.FETCHED, status=row["status"],
                         content_type=row["content_type"], fetched_at=row["fetched_at"], sha256=row["sha256"],
                         size=row["size"], loaded_run_id=row["loaded_run_id"])  # fmt: skip


def _pages(archive: RawArchive, fetched: list[ArchivedFetch], sources: dict[str, Source],
           batch_size: int) -> Iterator[list[PageRecord]]:  # fmt: skip
    """Batches of extracted pages, extracted one batch at a time (the bodies of a batch only)."""
    for batch in replay_batches(fetched, batch_size):
        yield [page_record(f, archive.body(f.fetch_id), sources.get(f.source)) for f in batch]


def replay_batches(fetched: Iterable[ArchivedFetch], size: int) -> Iterator[list[ArchivedFetch]]:
    """Fetches in fetch order, cut into batches of at most `size` that never hold two fetches
    of one URL (the later one is the page's next version) nor fetches of two runs (a batch is
    dated by its latest fetch)."""
    batch: list[ArchivedFetch] = []
    urls: set[str] = set()
    for fetch in sorted(fetched, key=lambda f: f.fetch_id):
        if batch and (len(batch) >= size or fetch.url in urls or fetch.run_id != batch[0].run_id):
            yield batch
            batch, urls = [], set()
        batch.append(fetch)
        urls.add(fetch.url)
    if batch:
        yield batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.rebuild", description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", default=str(settings.WAREHOUSE_PATH), help="the DuckDB file to rebuild")
    parser.add_argument("--archive", default=None, help="raw archive: a directory, or postgres:<libpq dsn> "
                        "(default: GOVETL_ARCHIVE, else archive/ beside the warehouse)")
    parser.add_argument("--sources", default=str(settings.SOURCES_FILE), help="sources.yaml (selectors, regions)")
    parser.add_argument("--batch-size", type=int, default=settings.BATCH_SIZE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = rebuild(args.warehouse, args.archive, args.sources, args.batch_size)
    except (FileNotFoundError, ArchiveError, RunLockedError, SourceConfigError, WarehouseError) as exc:
        print(f"rebuild failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rebuild interrupted: {args.warehouse} is as it was", file=sys.stderr)
        return 130
    print(result.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
