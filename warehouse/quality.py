"""Data-quality checks: SQL files in warehouse/checks/, results stored in dq_results.

Each `checks/*.sql` returns rows (check_name, status, observed, threshold, detail) with
status pass | warn | fail; its thresholds sit in the file. The unique-key checks are
instantiated from `checks/unique_key.sql.template` for every table in tables.TABLES.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from string import Template
from typing import SupportsFloat

import duckdb

from warehouse.staging import staged, table_fields, to_arrow, utc_naive, utc_now
from warehouse.tables import TABLES
from warehouse.tx import one_row, transaction

log = logging.getLogger(__name__)

CHECKS_DIR = Path(__file__).resolve().parent / "checks"


@dataclass(frozen=True)
class CheckResult:
    check_name: str
    status: str  # pass | warn | fail
    observed: float | None
    threshold: float | None
    detail: str | None


def check_queries() -> dict[str, str]:
    """Every check's SQL by name: the files, then one unique-key check per declared table."""
    queries = {p.stem: p.read_text(encoding="utf-8") for p in sorted(CHECKS_DIR.glob("*.sql"))}
    template = Template((CHECKS_DIR / "unique_key.sql.template").read_text(encoding="utf-8"))
    for spec in (s for s in TABLES.values() if s.checked):
        queries[f"unique_key:{spec.name}"] = template.substitute(
            table=spec.name, key=", ".join(spec.key))
    return queries


def run_checks(con: duckdb.DuckDBPyConnection, run_id: str,
               checked_at: datetime | None = None) -> list[CheckResult]:
    """Run every check, store the results under run_id (replacing earlier ones), return them."""
    results = [_run_check(con, sql) for sql in check_queries().values()]
    for r in results:
        if r.status != "pass":
            log.warning("data-quality check %s: %s (%s)", r.check_name, r.status, r.detail)
    _store(con, run_id, results, utc_naive(checked_at or utc_now()))
    return results


def _run_check(con: duckdb.DuckDBPyConnection, sql: str) -> CheckResult:
    name, status, observed, threshold, detail = one_row(con, sql)
    return CheckResult(name, status, _float(observed), _float(threshold), detail)


def _store(con: duckdb.DuckDBPyConnection, run_id: str, results: list[CheckResult],
           checked_at: datetime) -> None:
    rows = [asdict(r) | {"run_id": run_id, "checked_at": checked_at} for r in results]
    staging = {"stg_dq_results": to_arrow(rows, table_fields(con, "dq_results"))}
    with transaction(con), staged(con, staging):
        con.execute("insert or replace into dq_results by name select * from stg_dq_results")


def _float(value: SupportsFloat | None) -> float | None:
    return None if value is None else float(value)
