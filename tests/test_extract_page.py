"""The whole page (tasks/extract.py): failure is partial, never total; the command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tasks.extract.document
from tasks.extract import extract_page
from tasks.settings import PROJECT_ROOT
from tests.pages import CLOSING, MIDDLE, OPENING, TITLE, article, paragraphs

INFO = "<p>索引号：113310000026833949/2023-00001</p><p>发布机构：某县民政局</p><p>发布日期：2024-01-05</p>"
PAGE = article(f"<div id='zoom'>{paragraphs('一、2023年工作总结', OPENING, MIDDLE, '二、2024年工作计划', CLOSING)}</div>",
               before=f"<div class='info'>{INFO}</div><h1>{TITLE}</h1>")  # fmt: skip


def test_a_whole_page_yields_every_part():
    extraction = extract_page(PAGE)
    assert extraction.report.index_no == "113310000026833949/2023-00001"
    assert [s.heading for s in extraction.sections if s.level == 1] == ["2023年工作总结", "2024年工作计划"]
    assert extraction.metrics and all(m.index_no == extraction.report.index_no for m in extraction.metrics)
    assert extraction.report.content_sha256


# --- odd input never raises ------------------------------------------------------------------------
@pytest.mark.parametrize("html", [
    "",
    "   \n\t ",
    "<<<>>>&&&",
    "\x00\x01\x02 binary \ufffd\ufffd",
    "<?xml version='1.0' encoding='gbk'?><html><body><p>索引号：123</p></body></html>",
    "<html><body><div id='zoom'><p>只有标题</div>",
    "<table><tr><td><table><tr><td>" * 50 + OPENING,
    "<div>" * 3000 + OPENING + "</div>" * 3000,
    "<html><body><div id='zoom'></div></body></html>",
    "<p>" + "一、" * 500 + "</p>",
    "<p>" + "（一）" * 300 + "1." * 300 + "</p>",
    "<!-- only a comment -->",
    "<![CDATA[x]]>",
])  # fmt: skip
def test_odd_input_never_raises(html):
    extraction = extract_page(html)
    assert extraction.report is not None
    assert isinstance(extraction.warnings, list)


def test_empty_body_is_a_warning_not_an_error():
    extraction = extract_page(article("<div id='zoom'></div>", before=f"<div>{INFO}</div>"))
    assert extraction.report.index_no == "113310000026833949/2023-00001"
    assert extraction.report.body_text is None
    assert extraction.warnings


def test_a_ten_megabyte_paragraph_is_read_and_bounded():
    huge = "发放救助资金120万元，" * 350_000  # 10.5 MB of UTF-8 in one text node, past libxml2's default limit
    assert len(huge.encode("utf-8")) > 10_000_000
    extraction = extract_page(article(f"<div id='zoom'><p>{huge}</p></div>", before=f"<div>{INFO}</div>"))
    assert extraction.report.index_no == "113310000026833949/2023-00001"
    read = len(extraction.report.body_text or "")
    assert read == len(huge)  # all of it
    assert len(extraction.metrics) == 5000 and any("stopped at 5000" in w for w in extraction.warnings)


def test_a_page_of_comments_is_empty_not_failed():
    extraction = extract_page("<!-- nothing here -->")
    assert not [w for w in extraction.warnings if "failed" in w]


def test_a_failing_parser_still_yields_a_report(monkeypatch):
    monkeypatch.setattr(tasks.extract.document, "parse_page", lambda html: 1 / 0)
    extraction = extract_page(PAGE)
    assert extraction.report is not None and any(w.startswith("parse failed") for w in extraction.warnings)


@pytest.mark.parametrize("stage", ["clean_body", "locate_body", "parse_outline", "extract_metrics", "extract_ranks"])
def test_a_failing_stage_keeps_the_rest(monkeypatch, stage):
    def broken(*args, **kwargs):
        raise RuntimeError("rule broke on odd input")

    monkeypatch.setattr(tasks.extract.document, stage, broken)
    extraction = extract_page(PAGE)
    assert extraction.report.index_no == "113310000026833949/2023-00001"
    assert extraction.report.title == TITLE
    assert any("rule broke on odd input" in w for w in extraction.warnings)


def test_metrics_are_still_read_when_the_outline_fails(monkeypatch):
    monkeypatch.setattr(tasks.extract.document, "parse_outline", lambda *a, **k: 1 / 0)
    page = article(f"<div id='zoom'>{paragraphs(OPENING, '新增养老床位１２０張。')}</div>", before=f"<div>{INFO}</div>")
    extraction = extract_page(page)
    assert extraction.report.body_text.endswith("新增养老床位１２０張。")
    assert (120, "bed") in [(m.value_norm, m.unit_norm) for m in extraction.metrics]
    assert all(m.section_id == "0" for m in extraction.metrics)


def test_a_failing_metadata_stage_keeps_the_body(monkeypatch):
    monkeypatch.setattr(tasks.extract.document, "extract_metadata", lambda *a, **k: 1 / 0)
    extraction = extract_page(PAGE)
    assert extraction.report.index_no is None
    assert extraction.report.body_text.startswith("一、2023年工作总结")
    assert extraction.metrics
    assert any(w.startswith("metadata failed") for w in extraction.warnings)


def test_a_failing_body_stage_keeps_the_metadata(monkeypatch):
    monkeypatch.setattr(tasks.extract.document, "clean_body", lambda *a, **k: [][1])
    extraction = extract_page(PAGE)
    assert (extraction.report.index_no, extraction.report.publisher) == ("113310000026833949/2023-00001", "某县民政局")
    assert any(w.startswith("body failed") for w in extraction.warnings)


# --- the command line ----------------------------------------------------------------------------
def _columns(warehouse: Path, table: str) -> set[str]:
    """Column names of a table of a real, migrated warehouse (what the loader writes)."""
    from warehouse import connect

    con = connect(warehouse)
    try:
        return {name for (name,) in con.execute(
            "select column_name from duckdb_columns() where table_name = ?", [table]).fetchall()}  # fmt: skip
    finally:
        con.close()


def test_cli_prints_json_with_the_warehouse_column_names(tmp_path: Path):
    page = tmp_path / "page.html"
    page.write_bytes(PAGE.encode("gb18030").replace(b"charset='utf-8'", b"charset='gbk'"))
    done = subprocess.run([sys.executable, "-m", "tasks.extract", str(page)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    data = json.loads(done.stdout)
    assert {"report", "sections", "metrics", "warnings"} <= set(data)
    assert data["report"]["index_no"] == "113310000026833949/2023-00001"
    assert data["report"]["publish_date"] == "2024-01-05"
    warehouse = tmp_path / "w.duckdb"
    assert set(data["report"]) <= _columns(warehouse, "reports")
    for table in ("sections", "metrics", "ranks"):
        columns = _columns(warehouse, table)
        for row in data[table]:
            assert set(row) <= columns, (table, set(row) - columns)
    assert data["metrics"] and data["sections"]
