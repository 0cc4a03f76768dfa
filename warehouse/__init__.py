"""The DuckDB warehouse: schema, the only writer, checks, search, snapshots and export.

Its stages are subpackages (warehouse/README.md, "Layout"): `backend` opens the file or the
lake, `schema` is what the warehouse is, `writer` loads, `quality` checks each load, and
`analyst` holds the readers' command lines. The names below are re-exported for the flows;
anything else is imported from its module (`from warehouse.schema.migrate import ...`).

Typical nightly use (one writer process):

    con = connect(settings.WAREHOUSE_PATH)          # waits for the lock, migrates
    start_run(con, run_id, flow_run_id=..., parameters=...)
    outcomes = load_pages(con, run_id, pages, observed_at, fetch_log_rows=rows)  # per batch
    results = run_checks(con, run_id)
    finish_run(con, run_id, status="completed", counts=..., sources=...)
    con.close()
    snapshot(settings.WAREHOUSE_PATH)               # analysts read <stem>.snapshot.duckdb
"""

from warehouse.backend.connect import connect, snapshot, snapshot_path
from warehouse.backend.errors import (MigrationError, WarehouseDamaged, WarehouseError, WarehouseFormatError,
                                      WarehouseKeyError, WarehouseLockedError)
from warehouse.backend.tx import transaction
from warehouse.quality.checks import CheckResult, run_checks
from warehouse.schema.migrate import migrate
from warehouse.writer.load import count_outcomes, load_pages, record_fetch_log
from warehouse.writer.runs import finish_run, start_run
from warehouse.writer.search import rebuild_search_index

__all__ = [
    "CheckResult", "MigrationError", "WarehouseDamaged", "WarehouseError", "WarehouseFormatError",
    "WarehouseKeyError", "WarehouseLockedError", "connect", "count_outcomes", "finish_run", "load_pages", "migrate",
    "rebuild_search_index", "record_fetch_log", "run_checks", "snapshot", "snapshot_path",
    "start_run", "transaction",
]
