"""The nightly ETL flow: per configured source, discover → fetch → extract → load → check.

    python -m flows.nightly --sources sources.yaml --warehouse data/warehouse.duckdb

or as the `nightly` deployment of prefect.yaml. A second run on the same warehouse
waits RUN_LOCK_TIMEOUT seconds for the first, then stops with a message. One failing
page never fails the run; it shows in the summary, the fetch_log and the rejects table.
A source that cannot be read at all makes the run `partial`; when none can, or no listing
yields a link, the run fails (flows/runner.py lists the states and exit statuses). So does
a locked warehouse (pages fetched so far wait in the raw archive and the next run loads
them), a damaged archive, a full disk. SIGINT and SIGTERM stop it as flows/interrupt.py says.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

from prefect import flow
from prefect.states import State
from prefect.task_runners import ThreadPoolTaskRunner

from flows.runner import (Verdict, add_note, archive_location, check_inputs, crawl_verdict, current_flow_run_id,
                          final_state, new_files_note, new_summary, reported_run, run_from_cli)  # fmt: skip
from flows.cluster import ExtractOn, add_dask_arguments, extract_on_from
from flows.stages import crawl, load_archived
from tasks import settings
from tasks.crawl.archive import RawArchive, shown_setting
from tasks.crawl.runlock import run_lock
from tasks.sources import read_sources, select_sources
from warehouse.backend.lake import is_lake
from warehouse.backend.rebuild import check_warehouse


# The ignore below: Prefect annotates task_runner as TaskRunner[PrefectFuture[Any]], invariant
# in the future's type, so its own ThreadPoolTaskRunner (of PrefectConcurrentFuture) fails it.
@flow(name="nightly-etl",
      task_runner=ThreadPoolTaskRunner(max_workers=settings.FETCH_WORKERS))  # type: ignore[arg-type]
def nightly(
    sources_file: str = str(settings.SOURCES_FILE),
    warehouse_path: str = settings.WAREHOUSE,
    archive: str | None = None,
    only: list[str] | None = None,
    revalidate_after_hours: float = settings.REVALIDATE_AFTER_HOURS,
    batch_size: int = settings.BATCH_SIZE,
    dask_workers: int = settings.DASK_WORKERS,
    dask_address: str | None = settings.DASK_ADDRESS,
) -> State:
    summary = new_summary()
    parameters = {"sources_file": sources_file, "warehouse_path": warehouse_path, "only": only,
                  "revalidate_after_hours": revalidate_after_hours, "flow_run_id": current_flow_run_id()}  # fmt: skip
    archive_file = archive_location(archive, warehouse_path)
    with reported_run(summary, "nightly run", warehouse_path, archive_file, parameters) as run:
        check_warehouse(warehouse_path, archive_dir=shown_setting(archive))  # damaged: say how to rebuild it
        configured = read_sources(sources_file)
        sources = select_sources(configured, only, where=sources_file)
        parameters["sources"] = names = [s.name for s in sources]  # the run's lock scope on a lake (runlock, runs)
        with run_lock(warehouse_path, sources=names):
            new_files = new_files_note(warehouse_path, archive_file)
            with RawArchive(archive_file) as raw:
                run.stage = "crawl"
                crawl(sources, raw, summary, revalidate_after_hours)
                verdict = crawl_verdict(summary, [s.name for s in sources])
                if reason := raw.disk_full():
                    verdict = Verdict("failed", f"disk full writing the raw archive ({reason}); pages fetched "
                                                "before it are kept; free some space and run again")  # fmt: skip
                for note in (verdict.message, new_files):  # the verdict first: Prefect's state message starts with it
                    if note:
                        add_note(summary, note)
                run.stage = "load"
                # On a lake, runs of other sources load side by side: each loads its own sources' pages.
                unloaded = (lambda: [f for f in raw.unloaded() if f.source in names]) if is_lake(warehouse_path) \
                    else raw.unloaded
                load_archived(unloaded, raw, warehouse_path, {s.name: s for s in configured}, summary,
                              batch_size, parameters, status=verdict.status,
                              extract_on=ExtractOn(dask_workers, dask_address))  # fmt: skip
    return final_state(summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.nightly", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", default=str(settings.SOURCES_FILE), help="sources.yaml to crawl")
    parser.add_argument("--warehouse", default=settings.WAREHOUSE,
                        help="DuckDB file to load, or a lake: ducklake:postgres:<libpq dsn> (default: GOVETL_WAREHOUSE)")
    parser.add_argument("--archive", default=None, help="raw archive: a directory, or postgres:<libpq dsn> "
                        "(default: GOVETL_ARCHIVE, else archive/ beside the warehouse)")
    parser.add_argument("--only", action="append", help="crawl only this source (repeatable)")
    parser.add_argument("--revalidate-after-hours", type=float, default=settings.REVALIDATE_AFTER_HOURS,
                        help="re-check known pages last confirmed longer ago than this (0: all)")
    parser.add_argument("--batch-size", type=int, default=settings.BATCH_SIZE)
    add_dask_arguments(parser)
    args = parser.parse_args(argv)
    extract_on_from(parser, args)
    return run_from_cli(nightly, "nightly run", preflight=partial(check_inputs, args.sources, args.only, args.warehouse,
                                                                  args.archive),
                        sources_file=args.sources, warehouse_path=args.warehouse, archive=args.archive,
                        only=args.only, revalidate_after_hours=args.revalidate_after_hours,
                        batch_size=args.batch_size, dask_workers=args.dask_workers,
                        dask_address=args.dask_address)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
