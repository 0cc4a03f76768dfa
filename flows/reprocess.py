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

from flows.runner import (archive_path, check_inputs, current_flow_run_id, final_state, new_summary, reported_run,
                          run_from_cli)  # fmt: skip
from flows.stages import load_archived
from tasks import settings
from tasks.crawl.archive import RawArchive
from tasks.crawl.runlock import run_lock
from tasks.sources import read_sources
from warehouse.rebuild import check_warehouse


@flow(name="reprocess-archive")
def reprocess(
    sources_file: str = str(settings.SOURCES_FILE),
    warehouse_path: str = str(settings.WAREHOUSE_PATH),
    archive_dir: str | None = None,
    only: list[str] | None = None,
    batch_size: int = settings.BATCH_SIZE,
) -> State:
    summary = new_summary()
    parameters = {"mode": "reprocess", "warehouse_path": warehouse_path, "only": only,
                  "flow_run_id": current_flow_run_id()}  # fmt: skip
    archive_file = archive_path(archive_dir, warehouse_path)
    with reported_run(summary, "reprocessing", warehouse_path, archive_file, parameters) as run:
        check_warehouse(warehouse_path, archive_dir=archive_dir)  # damaged: say how to rebuild it
        sources = {s.name: s for s in read_sources(sources_file)}  # disabled ones too: their pages are archived
        with run_lock(warehouse_path), RawArchive(archive_file) as archive:
            run.stage = "load"
            load_archived(lambda: [f for f in archive.latest_fetched() if not only or f.source in only], archive,
                          warehouse_path, sources, summary, batch_size, parameters)  # fmt: skip
    return final_state(summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.reprocess", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", default=str(settings.SOURCES_FILE), help="sources.yaml (selectors, regions)")
    parser.add_argument("--warehouse", default=str(settings.WAREHOUSE_PATH))
    parser.add_argument("--archive", default=None, help="raw archive directory (default: beside the warehouse)")
    parser.add_argument("--only", action="append", help="reprocess only this source (repeatable)")
    parser.add_argument("--batch-size", type=int, default=settings.BATCH_SIZE)
    args = parser.parse_args(argv)
    return run_from_cli(reprocess, "reprocessing", preflight=partial(check_inputs, args.sources, args.only,
                                                                     args.warehouse, args.archive),
                        sources_file=args.sources, warehouse_path=args.warehouse, archive_dir=args.archive,
                        only=args.only, batch_size=args.batch_size)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
