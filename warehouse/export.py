"""Export the warehouse as Parquet, for pandas, pyarrow, Spark or another DuckDB.

    python -m warehouse.export --warehouse data/warehouse.snapshot.duckdb --out build/parquet

Every table becomes <out>/<table>.parquet, and so do the main views. `reports`,
`sections` and `metrics` are hive-partitioned by region instead:
<out>/<table>/region=<region>/data_0.parquet (sections and metrics carry their report's
region; a NULL region is written as region=__HIVE_DEFAULT_PARTITION__). Read them with
`read_export` or `pyarrow.dataset.dataset(dir, partitioning="hive")`: pandas' own hive
reader cannot unify a NULL partition. `_manifest.json` lists what was written.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from tasks import settings
from warehouse.connect import connect
from warehouse.staging import utc_now
from warehouse.tx import one_row

log = logging.getLogger(__name__)

EXPORT_VIEWS: tuple[str, ...] = (
    "latest_reports", "report_outline", "indicator_series", "indicator_by_region_year")
# Partitioned tables and the query giving each row its report's region.
PARTITIONED: dict[str, str] = {
    "reports": "select * from reports",
    "sections": "select c.*, r.region from sections as c left join reports as r using (index_no)",
    "metrics": "select c.*, r.region from metrics as c left join reports as r using (index_no)",
}


def export_warehouse(warehouse: str | os.PathLike, out: str | os.PathLike, *,
                     lock_timeout: float = settings.WAREHOUSE_LOCK_TIMEOUT) -> dict[str, int]:
    """Write every table and main view under `out`; return rows written per name."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    con = connect(warehouse, read_only=True, lock_timeout=lock_timeout)
    try:
        written = {name: _copy(con, query, out / name, partitioned=name in PARTITIONED)
                   for name, query in _export_queries(con).items()}
    finally:
        con.close()
    manifest = {"warehouse": str(warehouse), "exported_at": utc_now().isoformat() + "Z",
                "rows": written, "partitioned_by_region": sorted(PARTITIONED)}
    (out / "_manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
    log.info("exported %d tables and views to %s", len(written), out)
    return written


def _export_queries(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    tables = [name for (name,) in con.execute(
        "select table_name from duckdb_tables() where schema_name = 'main' and not temporary "
        "order by table_name").fetchall()]
    queries = {name: PARTITIONED.get(name, f'select * from "{name}"') for name in tables}
    return queries | {name: f"select * from {name}" for name in EXPORT_VIEWS}


def _copy(con: duckdb.DuckDBPyConnection, query: str, target: Path, partitioned: bool) -> int:
    """COPY one query to Parquet, replacing an earlier export of it."""
    shutil.rmtree(target, ignore_errors=True)
    target = target if partitioned else target.with_suffix(".parquet")
    target.unlink(missing_ok=True)
    options = "format parquet, partition_by (region)" if partitioned else "format parquet"
    (rows,) = one_row(con, f"copy ({query}) to {_literal(target)} ({options})")
    if partitioned:
        target.mkdir(exist_ok=True)  # an empty table still exports as a readable directory
    return rows


def _literal(path: Path) -> str:
    """A file path as a SQL string literal (COPY TO takes no bound parameters)."""
    return "'" + str(path).replace("'", "''") + "'"


def read_export(out: str | os.PathLike, name: str) -> pd.DataFrame:
    """Read one exported table or view back as a DataFrame (region restored as a column)."""
    path = Path(out) / name
    if not path.is_dir():
        return pd.read_parquet(path.with_suffix(".parquet"))
    region = ds.partitioning(pa.schema([("region", pa.string())]), flavor="hive")
    return ds.dataset(path, format="parquet", partitioning=region).to_table().to_pandas()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warehouse.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, default=settings.WAREHOUSE_PATH,
                        help="DuckDB file to export (default: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name, rows in export_warehouse(args.warehouse, args.out).items():
        log.info("%-26s %9d rows", name, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
