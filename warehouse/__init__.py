"""The DuckDB warehouse: schema, the only writer, checks, search, snapshots and export.

Typical nightly use (one writer process):

    con = connect(settings.WAREHOUSE_PATH)          # waits for the lock, migrates
    start_run(con, run_id, flow_run_id=..., parameters=...)
    outcomes = load_pages(con, run_id, pages, observed_at, fetch_log_rows=rows)  # per batch
    results = run_checks(con, run_id)
    finish_run(con, run_id, status="completed", counts=..., sources=...)
    con.close()
    snapshot(settings.WAREHOUSE_PATH)               # analysts read <stem>.snapshot.duckdb

Note: the re-exported functions `connect` and `migrate` shadow their modules as package
attributes; reach a module itself with `from warehouse.migrate import ...` or
`importlib.import_module("warehouse.migrate")`.
"""

from warehouse.connect import connect, snapshot, snapshot_path
from warehouse.errors import (MigrationError, WarehouseDamaged, WarehouseError, WarehouseFormatError,
                              WarehouseKeyError, WarehouseLockedError)
from warehouse.load import count_outcomes, load_pages, record_fetch_log
from warehouse.migrate import migrate
from warehouse.quality import CheckResult, run_checks
from warehouse.runs import finish_run, start_run
from warehouse.search import rebuild_search_index
from warehouse.tx import transaction

__all__ = [
    "CheckResult", "MigrationError", "WarehouseDamaged", "WarehouseError", "WarehouseFormatError",
    "WarehouseKeyError", "WarehouseLockedError", "connect", "count_outcomes", "finish_run", "load_pages", "migrate",
    "rebuild_search_index", "record_fetch_log", "run_checks", "snapshot", "snapshot_path",
    "start_run", "transaction",
]
