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

from flows.runner import (Verdict, add_note, archive_path, check_inputs, crawl_verdict, current_flow_run_id,
                          final_state, new_files_note, new_summary, reported_run, run_from_cli)  # fmt: skip
from flows.stages import crawl, load_archived
from tasks import settings
from tasks.crawl.archive import RawArchive
from tasks.crawl.runlock import run_lock
from tasks.sources import read_sources, select_sources
from warehouse.rebuild import check_warehouse


# The ignore below: Prefect annotates task_runner as TaskRunner[PrefectFuture[Any]], invariant
# in the future's type, so its own ThreadPoolTaskRunner (of PrefectConcurrentFuture) fails it.
@flow(name="nightly-etl",
      task_runner=ThreadPoolTaskRunner(max_workers=settings.FETCH_WORKERS))  # type: ignore[arg-type]
def nightly(
    sources_file: str = str(settings.SOURCES_FILE),
    warehouse_path: str = str(settings.WAREHOUSE_PATH),
    archive_dir: str | None = None,
    only: list[str] | None = None,
    revalidate_after_hours: float = settings.REVALIDATE_AFTER_HOURS,
    batch_size: int = settings.BATCH_SIZE,
) -> State:
    summary = new_summary()
    parameters = {"sources_file": sources_file, "warehouse_path": warehouse_path, "only": only,
                  "revalidate_after_hours": revalidate_after_hours, "flow_run_id": current_flow_run_id()}  # fmt: skip
    archive_file = archive_path(archive_dir, warehouse_path)
    with reported_run(summary, "nightly run", warehouse_path, archive_file, parameters) as run:
        check_warehouse(warehouse_path, archive_dir=archive_dir)  # damaged: say how to rebuild it
        configured = read_sources(sources_file)
        sources = select_sources(configured, only, where=sources_file)
        with run_lock(warehouse_path):
            new_files = new_files_note(warehouse_path, archive_file)
            with RawArchive(archive_file) as archive:
                run.stage = "crawl"
                crawl(sources, archive, summary, revalidate_after_hours, batch_size)
                verdict = crawl_verdict(summary, [s.name for s in sources])
                if reason := archive.disk_full():
                    verdict = Verdict("failed", f"disk full writing the raw archive ({reason}); pages fetched "
                                                "before it are kept; free some space and run again")  # fmt: skip
                for note in (verdict.message, new_files):  # the verdict first: Prefect's state message starts with it
                    if note:
                        add_note(summary, note)
                run.stage = "load"
                load_archived(archive.unloaded, archive, warehouse_path, {s.name: s for s in configured}, summary,
                              batch_size, parameters, status=verdict.status)  # fmt: skip
    return final_state(summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.nightly", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", default=str(settings.SOURCES_FILE), help="sources.yaml to crawl")
    parser.add_argument("--warehouse", default=str(settings.WAREHOUSE_PATH), help="DuckDB file to load")
    parser.add_argument("--archive", default=None, help="raw archive directory (default: beside the warehouse)")
    parser.add_argument("--only", action="append", help="crawl only this source (repeatable)")
    parser.add_argument("--revalidate-after-hours", type=float, default=settings.REVALIDATE_AFTER_HOURS,
                        help="re-check known pages last confirmed longer ago than this (0: all)")
    parser.add_argument("--batch-size", type=int, default=settings.BATCH_SIZE)
    args = parser.parse_args(argv)
    return run_from_cli(nightly, "nightly run", preflight=partial(check_inputs, args.sources, args.only, args.warehouse,
                                                                  args.archive),
                        sources_file=args.sources, warehouse_path=args.warehouse, archive_dir=args.archive,
                        only=args.only, revalidate_after_hours=args.revalidate_after_hours,
                        batch_size=args.batch_size)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
