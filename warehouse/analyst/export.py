"""Export the warehouse as Parquet, for pandas, pyarrow, Spark or another DuckDB.

    python -m warehouse.analyst.export --warehouse data/warehouse.snapshot.duckdb --out build/parquet

Every table becomes <out>/<table>.parquet, and so do the main views. `reports`,
`sections` and `metrics` are hive-partitioned by region instead:
<out>/<table>/region=<region>/data_0.parquet (sections and metrics carry their report's
region; a NULL region is written as region=__HIVE_DEFAULT_PARTITION__). Sections and metrics
are those of current reports: a superseded report's figures are its successor's
(reports.superseded_by, which `reports` keeps for every report). Read them with
`read_export` or `pyarrow.dataset.dataset(dir, partitioning="hive")`: pandas' own hive
reader cannot unify a NULL partition. `_manifest.json` lists what was written.

Beside them, <out>/indicator_by_region_year.xlsx holds the indicator table for Excel: that
view on its first sheet (header frozen, filters on, each column's meaning as a note on its
header), the indicator vocabulary on the second. Written with openpyxl rather than DuckDB's
excel extension: the extension wheel (packaged by a third party, pinned to one DuckDB
release) would tie every later DuckDB upgrade to its next build, and its COPY writes bare
cells; openpyxl is plain Python and lays the sheet out for a reader.
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
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from tasks import settings
from warehouse.backend.connect import connect
from warehouse.backend.errors import WarehouseError
from warehouse.backend.staging import utc_now
from warehouse.backend.tx import one_row, sql_literal
from warehouse.schema.migrate import view_column_comments

log = logging.getLogger(__name__)

EXPORT_VIEWS: tuple[str, ...] = (
    "latest_reports", "report_outline", "indicator_series", "indicator_by_region_year", "report_history")
# Partitioned tables and the query giving each row its report's region.
PARTITIONED: dict[str, str] = {
    "reports": "select * from reports",
    "sections": "select c.*, r.region from sections as c left join reports as r using (index_no) "
                "where r.superseded_by is null",
    "metrics": "select c.*, r.region from metrics as c left join reports as r using (index_no) "
               "where r.superseded_by is null",
}
WORKBOOK = "indicator_by_region_year.xlsx"
# Sheets of the workbook: name → query (the view first, then what its codes mean).
WORKBOOK_SHEETS: dict[str, str] = {
    "indicator_by_region_year": "select * from indicator_by_region_year order by all",
    "indicators": "select * from indicators order by code",
}
_EXCEL_CELL_CHARS = 32_767  # the most one Excel cell holds


def export_warehouse(warehouse: str | os.PathLike, out: str | os.PathLike, *,
                     lock_timeout: float = settings.WAREHOUSE_LOCK_TIMEOUT) -> dict[str, int]:
    """Write every table and main view under `out`; return rows written per name."""
    out = Path(out)
    con = connect(warehouse, read_only=True, lock_timeout=lock_timeout)  # first: a refused file leaves no folder
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = {name: _copy(con, query, out / name, partitioned=name in PARTITIONED)
                   for name, query in _export_queries(con).items()}
        written[WORKBOOK] = write_workbook(con, out / WORKBOOK)
    finally:
        con.close()
    manifest = {"warehouse": settings.redact_dsn(str(warehouse)), "exported_at": utc_now().isoformat() + "Z",
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
    (rows,) = one_row(con, f"copy ({query}) to {sql_literal(str(target))} ({options})")  # COPY takes no parameters
    if partitioned:
        target.mkdir(exist_ok=True)  # an empty table still exports as a readable directory
    return rows


def write_workbook(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """The indicator table as an Excel workbook (module doc); return the rows of its first sheet."""
    book = Workbook()
    book.remove(book.active)
    rows = {name: _add_sheet(book, con, name, query) for name, query in WORKBOOK_SHEETS.items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    book.save(tmp)
    os.replace(tmp, path)  # an open copy (Excel locks nothing on Linux) is never half written
    return rows["indicator_by_region_year"]


def _add_sheet(book: Workbook, con: duckdb.DuckDBPyConnection, name: str, query: str) -> int:
    result = con.execute(query)
    columns, rows = [d[0] for d in result.description or []], result.fetchall()
    notes = dict(con.execute("select column_name, comment from duckdb_columns() "
                             f"where table_name = '{name}' and comment is not null").fetchall())  # fmt: skip
    if not notes:  # a lake keeps no comments on a view's columns: as schema/views/ writes them
        notes = {column: text for (view, column), text in view_column_comments().items() if view == name}
    sheet = book.create_sheet(name)
    sheet.append(columns)
    widths = [len(c) for c in columns]
    for row in rows:
        cells = [_cell(value) for value in row]
        sheet.append(cells)
        widths = [max(w, _display_width(v)) for w, v in zip(widths, cells)]
    for i, (column, width) in enumerate(zip(columns, widths), start=1):
        header = sheet.cell(row=1, column=i)
        header.font = Font(bold=True)
        if column in notes:
            header.comment = Comment(notes[column], "govetl")
        sheet.column_dimensions[get_column_letter(i)].width = min(width + 2, 60)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    return len(rows)


def _cell(value: object) -> object:
    """A value Excel accepts: text without the control characters it refuses, and no longer
    than a cell holds (the full text is in the Parquet export)."""
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)[:_EXCEL_CELL_CHARS]
    return value


def _display_width(value: object) -> int:
    text = "" if value is None else str(value)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)  # a Han character is two columns wide


def read_export(out: str | os.PathLike, name: str) -> pd.DataFrame:
    """Read one exported table or view back as a DataFrame (region restored as a column)."""
    path = Path(out) / name
    if not path.is_dir():
        return pd.read_parquet(path.with_suffix(".parquet"))
    region = ds.partitioning(pa.schema([("region", pa.string())]), flavor="hive")
    return ds.dataset(path, format="parquet", partitioning=region).to_table().to_pandas()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warehouse.analyst.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", default=settings.WAREHOUSE,
                        help="DuckDB file or lake (ducklake:postgres:<dsn>) to export (default: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        written = export_warehouse(args.warehouse, args.out)
    except WarehouseError as exc:  # e.g. a file in DuckDB 2.0's format: one line saying what to do
        print(exc, file=sys.stderr)
        return 1
    for name, rows in written.items():
        log.info("%-30s %9d rows", name, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
