"""Data-quality checks: SQL files in warehouse/quality/sql/, results stored in dq_results.

Each `sql/*.sql` returns rows (check_name, status, observed, threshold, detail) with
status pass | warn | fail; its thresholds sit in the file. The unique-key checks are
instantiated from `sql/unique_key.sql.template` for every table in tables.TABLES, and one
check per CHECK constraint of the migrations from `sql/check_constraint.sql.template`
(a lake holds neither keys nor CHECKs: these checks are what verifies them there).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from functools import lru_cache
from datetime import datetime
from pathlib import Path
from string import Template
from typing import SupportsFloat

import duckdb

from warehouse.backend.lake import retrying
from warehouse.backend.staging import staged, table_fields, to_arrow, utc_naive, utc_now
from warehouse.backend.tx import one_row, sql_literal, transaction
from warehouse.schema.migrate import reference
from warehouse.schema.tables import TABLES

log = logging.getLogger(__name__)

CHECKS_DIR = Path(__file__).resolve().parent / "sql"


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
    return queries | constraint_checks()


@lru_cache(maxsize=1)
def constraint_checks() -> dict[str, str]:
    """One check per CHECK constraint the migrations declare, named check:<table>.<columns>."""
    template = Template((CHECKS_DIR / "check_constraint.sql.template").read_text(encoding="utf-8"))
    ref = reference()
    try:
        constraints = ref.execute(
            "select table_name, constraint_column_names, expression, constraint_text from duckdb_constraints() "
            "where constraint_type = 'CHECK' order by table_name, constraint_index").fetchall()
    finally:
        ref.close()
    checks = {}
    for table, columns, expression, text in constraints:
        name = f"{table}.{'_'.join(columns)}"
        checks[f"check:{name}"] = template.substitute(name=name, table=table, expression=expression,
                                                      text=sql_literal(text))
    return checks


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

    def store() -> None:
        with transaction(con), staged(con, staging):
            con.execute("merge into dq_results as d using stg_dq_results as s on d.run_id = s.run_id "
                        "and d.check_name = s.check_name when matched then update by name when not matched then insert by name")

    retrying(con, store, what="storing the data-quality results")


def _float(value: SupportsFloat | None) -> float | None:
    return None if value is None else float(value)
