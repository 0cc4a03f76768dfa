"""The runs ledger: one row per flow run, plus per-source counts in run_sources."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import duckdb

from warehouse.staging import staged, table_fields, to_arrow, utc_naive, utc_now
from warehouse.tx import transaction

# Outcome counts of runs and run_sources, in column order.
RUN_COUNTS: tuple[str, ...] = ("discovered", "fetched", "new", "changed", "unchanged",
                               "not_modified", "failed", "skipped", "rejected")


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, *, flow_run_id: str | None = None,
              parameters: Mapping[str, Any] | None = None,
              started_at: datetime | None = None) -> None:
    """Record a run as running (a retried run_id is marked running again).

    Other runs still 'running' are closed as failed: a run holds the only writer
    connection from start_run to finish_run, so one that is still open when another
    starts was killed or crashed and would otherwise stay 'running' forever.
    """
    started = utc_naive(started_at or utc_now())
    with transaction(con):
        con.execute(
            """update runs
               set status = 'failed', finished_at = ?,
                   message = concat_ws('; ', message, 'abandoned: still running when run '
                                       || ? || ' started (killed or crashed before finishing)')
               where status = 'running' and run_id <> ?""",
            [started, run_id, run_id])
        con.execute(
            """insert into runs (run_id, flow_run_id, started_at, status, parameters)
               values (?, ?, ?, 'running', ?)
               on conflict (run_id) do update set status = 'running', finished_at = null""",
            [run_id, flow_run_id, started,
             json.dumps(parameters or {}, ensure_ascii=False, default=str)])


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, *, status: str,
               counts: Mapping[str, int] | None = None,
               sources: Mapping[str, Mapping[str, Any]] | None = None,
               message: str | None = None, finished_at: datetime | None = None,
               timings: Mapping[str, float] | None = None) -> None:
    """Close a run with its status (completed | failed), totals and per-source counts.

    `sources` maps a source name to its counts and an optional "error" sentence;
    `timings` the seconds of each stage, as far as they are known.
    """
    if status not in ("completed", "failed"):
        raise ValueError(f"a run finishes completed or failed, not {status!r}")
    counts = dict(counts or {})
    _check_count_names(counts)
    assignments = ", ".join(f"{name} = ?" for name in counts)  # names from RUN_COUNTS only
    with transaction(con):
        con.execute(
            f"update runs set status = ?, finished_at = ?, message = ?, timings = ?"
            f"{', ' if counts else ''}{assignments} where run_id = ?",
            [status, utc_naive(finished_at or utc_now()), message,
             json.dumps({k: round(v, 3) for k, v in (timings or {}).items()}) if timings else None,
             *counts.values(), run_id])
        if sources:
            _record_sources(con, run_id, sources)


def _record_sources(con: duckdb.DuckDBPyConnection, run_id: str,
                    sources: Mapping[str, Mapping[str, Any]]) -> None:
    rows = []
    for source, values in sources.items():
        _check_count_names({k: v for k, v in values.items() if k != "error"})
        rows.append(dict(values) | {"run_id": run_id, "source": source})
    with staged(con, {"stg_run_sources": to_arrow(rows, table_fields(con, "run_sources"))}):
        con.execute("insert or replace into run_sources by name select * from stg_run_sources")


def _check_count_names(counts: Mapping[str, Any]) -> None:
    unknown = set(counts) - set(RUN_COUNTS)
    if unknown:
        raise ValueError(f"unknown run counts {sorted(unknown)}; known: {', '.join(RUN_COUNTS)}")
