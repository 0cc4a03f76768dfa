"""The runs ledger: one row per flow run, plus per-source counts in run_sources."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import duckdb

from warehouse.backend.lake import is_lake_connection, retrying
from warehouse.backend.staging import staged, staged_values, table_fields, to_arrow, utc_naive, utc_now
from warehouse.backend.tx import transaction

# Outcome counts of runs and run_sources, in column order.
RUN_COUNTS: tuple[str, ...] = ("discovered", "fetched", "new", "changed", "unchanged",
                               "not_modified", "failed", "skipped", "rejected")


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, *, flow_run_id: str | None = None,
              parameters: Mapping[str, Any] | None = None,
              started_at: datetime | None = None) -> None:
    """Record a run as running (a retried run_id is marked running again).

    Other runs still 'running' are closed as failed: a run holds the only writer
    connection from start_run to finish_run, so one that is still open when another
    starts was killed or crashed and would otherwise stay 'running' forever. On a lake,
    where runs of other sources load side by side, only those sharing a source with this
    one: `parameters["sources"]` names a run's sources (the run lock holds them, so another
    run of one of them is dead); a run that names none is taken to load them all.
    """
    started = utc_naive(started_at or utc_now())
    values = {"run_id": run_id, "flow_run_id": flow_run_id, "started_at": started,
              "parameters": json.dumps(parameters or {}, ensure_ascii=False, default=str),
              "shared": is_lake_connection(con)}

    def record() -> None:
        with transaction(con), staged_values(con, **values):
            con.execute(_CLOSE_ABANDONED)
            con.execute(
                """merge into runs using args as a on runs.run_id = a.run_id
                   when matched then update set status = 'running', finished_at = null
                   when not matched then insert (run_id, flow_run_id, started_at, status, parameters)
                       values (a.run_id, a.flow_run_id, a.started_at, 'running', a.parameters)""")

    retrying(con, record, what=f"recording run {run_id} as running")


# Runs still 'running' that this one's start proves dead (start_run's docstring). A run's
# sources are its parameters' "sources" (NULL: it named none, so it loads them all).
_CLOSE_ABANDONED = """
update runs
set status = 'failed', finished_at = a.started_at,
    message = concat_ws('; ', runs.message, 'abandoned: still running when run '
                        || a.run_id || ' started (killed or crashed before finishing)')
from args as a
where runs.status = 'running' and runs.run_id <> a.run_id
  and (not a.shared
       or json_extract(runs.parameters, '$.sources') is null or json_extract(a.parameters, '$.sources') is null
       or list_has_any(from_json(json_extract(runs.parameters, '$.sources'), '["VARCHAR"]'),
                       from_json(json_extract(a.parameters, '$.sources'), '["VARCHAR"]')))
"""


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, *, status: str,
               counts: Mapping[str, int] | None = None,
               sources: Mapping[str, Mapping[str, Any]] | None = None,
               message: str | None = None, finished_at: datetime | None = None,
               timings: Mapping[str, float] | None = None) -> None:
    """Close a run with its status (completed | partial | failed | interrupted; migration 0011),
    totals and per-source counts.

    `sources` maps a source name to its counts and an optional "error" sentence;
    `timings` the seconds of each stage, as far as they are known.
    """
    if status not in ("completed", "partial", "failed", "interrupted"):
        raise ValueError(f"a run finishes completed, partial, failed or interrupted, not {status!r}")
    counts = dict(counts or {})
    _check_count_names(counts)
    values = {"run_id": run_id, "status": status, "finished_at": utc_naive(finished_at or utc_now()),
              "message": message,
              "timings": json.dumps({k: round(v, 3) for k, v in timings.items()}) if timings else None}
    assignments = "".join(f", {name} = a.{name}" for name in counts)  # names from RUN_COUNTS only

    def record() -> None:
        with transaction(con), staged_values(con, **values, **counts):
            con.execute(
                f"update runs set status = a.status, finished_at = a.finished_at, message = a.message, "
                f"timings = a.timings{assignments} from args as a where runs.run_id = a.run_id")
            if sources:
                _record_sources(con, run_id, sources)

    retrying(con, record, what=f"recording run {run_id} as {status}")


def _record_sources(con: duckdb.DuckDBPyConnection, run_id: str,
                    sources: Mapping[str, Mapping[str, Any]]) -> None:
    rows = []
    for source, values in sources.items():
        _check_count_names({k: v for k, v in values.items() if k != "error"})
        rows.append(dict(values) | {"run_id": run_id, "source": source})
    with staged(con, {"stg_run_sources": to_arrow(rows, table_fields(con, "run_sources"))}):
        con.execute("merge into run_sources as r using stg_run_sources as s on r.run_id = s.run_id "
                    "and r.source = s.source when matched then update by name when not matched then insert by name")


def _check_count_names(counts: Mapping[str, Any]) -> None:
    unknown = set(counts) - set(RUN_COUNTS)
    if unknown:
        raise ValueError(f"unknown run counts {sorted(unknown)}; known: {', '.join(RUN_COUNTS)}")
