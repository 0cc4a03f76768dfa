"""The lake from the command line: the analyst's lines, its snapshots (warehouse/backend/lake.py).

    python -m warehouse.analyst.lake_cli sql 'ducklake:postgres:host=… dbname=…'   # INSTALL, LOAD, ATTACH … (READ_ONLY)
    python -m warehouse.analyst.lake_cli snapshot LAKE                             # the latest snapshot's id
    python -m warehouse.analyst.lake_cli changes LAKE --since N                    # what the snapshots after N wrote

A module apart from warehouse.backend.lake, which the package imports (`python -m` would run a second copy of it).
"""

from __future__ import annotations

import argparse
import sys

import duckdb

from tasks import settings
from warehouse.backend.lake import (LakeError, attach_statements, current_snapshot, lake_of, open_lake,
                                    tables_changed_since)


def describe_changes(con: duckdb.DuckDBPyConnection, since: int) -> str:
    """One line: the snapshots after `since`, and whether they changed data or the ledger only."""
    now = current_snapshot(con)
    changed = tables_changed_since(con, since)
    data = sorted(set(changed) - LEDGER_TABLES)
    ledger = ", ".join(f"{name} {n}" for name, n in sorted(changed.items()) if name in LEDGER_TABLES)
    line = f"lake snapshots {since} → {now}: {now - since} new"
    if data:
        return line + f"; data tables written: {', '.join(data)}"
    return line + (f", the run ledger only ({ledger}): no data table written" if ledger else ": nothing written")


# What every run writes, even one that finds nothing new (warehouse/writer/runs.py, load.py).
LEDGER_TABLES = frozenset({"runs", "run_sources", "loads", "fetch_log"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warehouse.analyst.lake_cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["sql", "snapshot", "changes"],
                        help="sql: print the lines that attach the lake read-only (for the DuckDB CLI); "
                             "snapshot: print its latest snapshot's id; changes: what the snapshots after --since wrote")
    parser.add_argument("lake", nargs="?", default=settings.WAREHOUSE, help="ducklake:postgres:<dsn> (default: GOVETL_WAREHOUSE)")
    parser.add_argument("--since", type=int, default=0, help="changes: a snapshot id printed by `snapshot`")
    args = parser.parse_args(argv)
    try:
        lake = lake_of(args.lake)
        if lake is None:
            raise LakeError(f"{args.lake} is a DuckDB file, not a lake (ducklake:postgres:<dsn>)")
        if args.action == "sql":
            print(";\n".join(attach_statements(lake, read_only=True)) + ";")
            return 0
        con = open_lake(lake, read_only=True)
        try:
            print(current_snapshot(con) if args.action == "snapshot" else describe_changes(con, args.since))
        finally:
            con.close()
    except LakeError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
