"""Rebuild reports from the raw archive with the current extractor: no network at all.

    python -m flows.reprocess --warehouse data/warehouse.duckdb [--only SOURCE]

Run it after changing extraction rules (and bumping EXTRACTOR_VERSION in tasks/extract/document.py):
every archived page is extracted again; a report whose content hash is unchanged gets
its sections, metrics and ranks replaced and its extractor_version updated, without a
new version row; a report whose extracted content now differs gets a new version.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

from prefect import flow
from prefect.states import State

from flows.runner import (archive_location, check_inputs, current_flow_run_id, final_state, new_summary, reported_run,
                          run_from_cli)  # fmt: skip
from flows.cluster import ExtractOn, add_dask_arguments, extract_on_from
from flows.stages import load_archived
from tasks import settings
from tasks.crawl.archive import RawArchive, shown_setting
from tasks.crawl.runlock import run_lock
from tasks.sources import read_sources
from warehouse.backend.lake import is_lake
from warehouse.backend.rebuild import check_warehouse


@flow(name="reprocess-archive")
def reprocess(
    sources_file: str = str(settings.SOURCES_FILE),
    warehouse_path: str = settings.WAREHOUSE,
    archive: str | None = None,
    only: list[str] | None = None,
    batch_size: int = settings.BATCH_SIZE,
    dask_workers: int = settings.DASK_WORKERS,
    dask_address: str | None = settings.DASK_ADDRESS,
) -> State:
    summary = new_summary()
    parameters = {"mode": "reprocess", "warehouse_path": warehouse_path, "only": only,
                  "flow_run_id": current_flow_run_id()}  # fmt: skip
    archive_file = archive_location(archive, warehouse_path)
    with reported_run(summary, "reprocessing", warehouse_path, archive_file, parameters) as run:
        check_warehouse(warehouse_path, archive_dir=shown_setting(archive))  # damaged: say how to rebuild it
        sources = {s.name: s for s in read_sources(sources_file)}  # disabled ones too: their pages are archived
        # The run's lock scope on a lake (runlock, runs), where it reprocesses only those sources' pages.
        parameters["sources"] = names = sorted(only or sources)
        keep = set(names) if only or is_lake(warehouse_path) else None
        with run_lock(warehouse_path, sources=names), RawArchive(archive_file) as raw:
            run.stage = "load"
            load_archived(lambda: [f for f in raw.latest_fetched() if keep is None or f.source in keep], raw,
                          warehouse_path, sources, summary, batch_size, parameters,
                          extract_on=ExtractOn(dask_workers, dask_address))  # fmt: skip
    return final_state(summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.reprocess", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", default=str(settings.SOURCES_FILE), help="sources.yaml (selectors, regions)")
    parser.add_argument("--warehouse", default=settings.WAREHOUSE,
                        help="DuckDB file, or a lake: ducklake:postgres:<libpq dsn> (default: GOVETL_WAREHOUSE)")
    parser.add_argument("--archive", default=None, help="raw archive: a directory, or postgres:<libpq dsn> "
                        "(default: GOVETL_ARCHIVE, else archive/ beside the warehouse)")
    parser.add_argument("--only", action="append", help="reprocess only this source (repeatable)")
    parser.add_argument("--batch-size", type=int, default=settings.BATCH_SIZE)
    add_dask_arguments(parser)
    args = parser.parse_args(argv)
    extract_on_from(parser, args)
    return run_from_cli(reprocess, "reprocessing", preflight=partial(check_inputs, args.sources, args.only,
                                                                     args.warehouse, args.archive),
                        sources_file=args.sources, warehouse_path=args.warehouse, archive=args.archive,
                        only=args.only, batch_size=args.batch_size, dask_workers=args.dask_workers,
                        dask_address=args.dask_address)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
