"""Example queries an analyst starts from; `make demo` and the README show their output.

    python -m warehouse.analyst.examples [--warehouse data/warehouse.duckdb] [--only NAME]

Reads through a read-only connection (the snapshot if one exists, so it never blocks a
nightly run).
"""

from __future__ import annotations

import argparse
import sys

from tasks import settings
from warehouse.backend.connect import open_for_reading
from warehouse.backend.errors import WarehouseError

EXAMPLES: dict[str, tuple[str, str]] = {
    "dibao_standard_by_region": (
        "How did the minimum living guarantee (低保标准) change across regions and years?",
        """select region, year, indicator_name, value_norm, unit_norm, subject, text
           from indicator_series
           where indicator like 'dibao_standard%' and coalesce(role, 'current') = 'current'
           order by region, year, indicator, value_norm""",
    ),
    "caregivers_2023": (
        "One indicator across regions for one year (table macro indicator_compare).",
        "select region, value_norm, unit_norm, title from indicator_compare('certified_caregivers_new', 2023)",
    ),
    "search_eldercare_beds": (
        "Which sections talk about 养老床位? (Chinese full-text search)",
        "select region, title, heading, round(score, 2) as score from search('养老床位') limit 5",
    ),
    "runs": (
        "What did the last runs do?",
        """select run_id, status, discovered, fetched, new, changed, unchanged, not_modified, failed, rejected
           from runs order by started_at desc limit 3""",
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warehouse.analyst.examples", description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", default=settings.WAREHOUSE, help="DuckDB file or lake (ducklake:postgres:<dsn>)")
    parser.add_argument("--only", action="append", choices=sorted(EXAMPLES), help="show only this example")
    args = parser.parse_args(argv)
    try:
        con, _ = open_for_reading(args.warehouse)
    except WarehouseError as exc:  # e.g. a file in DuckDB 2.0's format: one line saying what to do
        print(exc, file=sys.stderr)
        return 1
    with con:
        for name in args.only or EXAMPLES:
            question, sql = EXAMPLES[name]
            print(f"\n-- {question}\n{' '.join(sql.split())}")
            con.sql(sql).show(max_width=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
