"""make export: every table and main view as Parquet, and the indicator table as an Excel workbook."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
from openpyxl import load_workbook

from tasks.records import Metric
from warehouse.analyst.export import PARTITIONED, WORKBOOK, export_warehouse, read_export
from warehouse.backend.connect import connect
from warehouse.schema.tables import TABLES
from warehouse.writer.load import load_pages
from tests.lakes import both_backends
from tests.reports import T0, make_page, metrics_for, sections_for


@pytest.fixture
def warehouse(warehouse_target: str) -> str:
    """Four reports: three regions (one without metrics) and one with no region; in a DuckDB
    file, or a lake under @both_backends."""
    path = warehouse_target
    con = connect(path)
    load_pages(con, "run-1", [
        make_page("TT-1", source="tiantai", region="天台县"),
        make_page("XJ-1", source="xianju", region="仙居县", metrics=metrics_for("XJ-1", beds=80)),
        make_page("CX-1", source="cixi", region="慈溪市", metrics=[], sections=sections_for("CX-1")[:2]),
        make_page("NR-1", region=None),
    ], T0)  # fmt: skip
    con.close()
    return path


@both_backends
def test_export_is_readable_by_pandas_and_pyarrow(warehouse, tmp_path) -> None:
    out = tmp_path / "parquet"
    written = export_warehouse(warehouse, out)
    assert written["reports"] == 4 and written["metrics"] == 15 and written["latest_reports"] == 4
    assert set(TABLES) <= set(written)

    metrics = read_export(out, "metrics")
    assert len(metrics) == 15
    assert metrics.groupby("region", dropna=False).size().to_dict().get("天台县") == 5
    assert metrics["region"].isna().sum() == 5
    for name in PARTITIONED:
        assert (out / name / "region=%E5%A4%A9%E5%8F%B0%E5%8E%BF").is_dir()  # region=天台县
    dataset = ds.dataset(out / "sections", format="parquet", partitioning="hive").to_table()
    assert dataset.num_rows == written["sections"]
    outline = pd.read_parquet(out / "report_outline.parquet")
    assert "outline" in outline.columns and len(outline) == written["report_outline"]
    assert export_warehouse(warehouse, out) == written  # re-export replaces, does not append


@both_backends
def test_the_workbook_holds_the_indicator_table_row_for_row(warehouse, tmp_path) -> None:
    out = tmp_path / "parquet"
    written = export_warehouse(warehouse, out)
    con = connect(warehouse, read_only=True)
    try:
        table = con.execute("select * from indicator_by_region_year order by all")
        columns, rows = [d[0] for d in table.description], table.fetchall()
        codes = con.execute("select code, name_zh from indicators order by code").fetchall()
    finally:
        con.close()
    assert written[WORKBOOK] == len(rows) > 0

    book = load_workbook(out / WORKBOOK)
    assert book.sheetnames == ["indicator_by_region_year", "indicators"]
    sheet = book["indicator_by_region_year"]
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == columns
    assert [tuple(row) for row in values[1:]] == rows  # numbers as numbers, 天台县 as written
    assert ("天台县", "dibao_standard", 2022, 950.0, "yuan/person/month") in {row[:5] for row in values[1:]}
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == sheet.dimensions
    assert sheet["A1"].font.bold and "Region" in sheet["A1"].comment.text  # the column's meaning
    vocabulary = list(book["indicators"].iter_rows(values_only=True))
    assert [row[:2] for row in vocabulary[1:]] == codes


def test_text_excel_refuses_is_cleaned_and_the_parquet_keeps_it(tmp_path) -> None:
    path = tmp_path / "warehouse.duckdb"
    sentence = "城乡低保标准\x00提高至\x0b950元/人/月" + "。" * 40_000
    metric = Metric("BAD-1", "1.2", 0, 950, "元/人/月", 950, "yuan/person/month", subject="城乡低保标准",
                    indicator="dibao_standard", year=2022, text="950元/人/月", sentence=sentence)
    con = connect(path)
    load_pages(con, "run-1", [make_page("BAD-1", metrics=[metric])], T0)
    con.close()
    out = tmp_path / "parquet"
    export_warehouse(path, out)
    header, row = load_workbook(out / WORKBOOK)["indicator_by_region_year"].iter_rows(max_row=2, values_only=True)
    cell = row[header.index("sentence")]
    assert cell.startswith("城乡低保标准提高至950元/人/月") and len(cell) == 32_767
    assert read_export(out, "metrics")["sentence"].tolist() == [sentence]
