"""`make report` end to end: a tiny warehouse built with the real loader, the report drawn
from it, and the page opened in headless Chromium (skipped when there is no Chromium;
scripts/install-browser.sh installs it)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from analysis.report import (NO_YEAR, NOT_COMPARABLE, OTHER, PLOTTED, PREVIOUS, build_report,
                             cell_id, comparable_runs, format_value, load_config, main,
                             split_sentence, value_status, year_runs)
from tasks.records import Metric, Section
from warehouse.backend.connect import connect, snapshot
from warehouse.writer.load import load_pages
from tests.reports import T0, later, make_page

CHARTS = [chart.slug for chart in load_config().charts]
TIANTAI, SHENGZHOU = "331023-01/2023-0001", "11330683730919932L/2024-103685"
XIANJU, CIXI = "113310247405400961/2023-97320", "1133028241969155XE/2022-154826"
DIBAO_TT = "城乡低保标准从900元/人/月提高至950元/人/月,特困供养标准提高至1309元/人/月。"
DIBAO_TT_DEC = "12月起城乡低保标准再次提高至1041元/人/月。"  # same cell, another figure
CARERS_TT = "新增持证养老护理员81名。"
DIBAO_SZ = "调整我市城乡低保标准从1050元/月至1134元/月,增幅达8%。"
TEKUN_SZ = "提高特困供养标准从1383元/月至1486元/月。"
DIBAO_CX = "最低生活保障标准提升至1005元/月,特困人员基本生活标准调整为1709元/月。"
RURAL_SZ = "农村低保标准为12000元/人/年。"  # an annual standard: 1,000 a month, converted


def metric(index_no: str, section: str, ordinal: int, value: float, unit: str, unit_norm: str,
           indicator: str, sentence: str, *, role: str | None = None,
           year: int | None = None, kind: str | None = None) -> Metric:
    text = f"{value:g}{unit}"
    assert text in sentence, "the sentence must state the value"
    return Metric(index_no, section, ordinal, value, unit, value, unit_norm, role=role,
                  indicator=indicator, year=year, text=text, sentence=sentence, kind=kind)


def sections(index_no: str, year: int) -> list[Section]:
    return [
        Section(index_no, "0", None, 0, None, None, "导语。", 0),
        Section(index_no, "1", None, 1, "一", f"{year}年工作总结", "", 1, kind="summary", year=year),
        Section(index_no, "1.1", "1", 2, "一", "社会救助", "社会救助。", 2, kind="summary", year=year),
        Section(index_no, "1.2", "1", 2, "二", "养老服务", "养老服务。", 3, kind="summary", year=year),
    ]


def tiantai():
    m = [
        metric(TIANTAI, "1.1", 0, 900, "元/人/月", "yuan/person/month", "dibao_standard", DIBAO_TT,
               role="previous", kind="level"),
        metric(TIANTAI, "1.1", 1, 950, "元/人/月", "yuan/person/month", "dibao_standard", DIBAO_TT,
               role="current", kind="level"),
        metric(TIANTAI, "1.1", 2, 1309, "元/人/月", "yuan/person/month", "tekun_standard", DIBAO_TT,
               kind="level"),
        metric(TIANTAI, "1.2", 3, 81, "名", "person", "certified_caregivers_new", CARERS_TT,
               kind="change"),
        metric(TIANTAI, "1.2", 4, 50, "名", "person", "certified_caregivers_new",
               "2023年新增持证养老护理员50名。", year=2023, kind="change"),
        metric(TIANTAI, "0", 5, 60, "张", "bed", "eldercare_beds", "新增养老床位60张。"),  # no year
        metric(TIANTAI, "1.1", 6, 1041, "元/人/月", "yuan/person/month", "dibao_standard",
               DIBAO_TT_DEC, kind="level"),
        metric(TIANTAI, "1.2", 7, 66, "名", "person", "certified_caregivers_new",  # after a gap
               "2025年新增持证养老护理员66名。", year=2025, kind="change"),
    ]
    return make_page(TIANTAI, region="天台县", source="tiantai", sections=sections(TIANTAI, 2022),
                     metrics=m, title="天台县民政局2022年度工作总结及2023年工作计划")


def shengzhou():
    m = [
        metric(SHENGZHOU, "1.1", 0, 1050, "元/月", "yuan/month", "dibao_standard", DIBAO_SZ,
               role="previous", kind="level"),
        metric(SHENGZHOU, "1.1", 1, 1134, "元/月", "yuan/month", "dibao_standard", DIBAO_SZ,
               role="current", kind="level"),
        metric(SHENGZHOU, "1.1", 2, 1383, "元/月", "yuan/month", "tekun_standard", TEKUN_SZ,
               role="previous"),
        metric(SHENGZHOU, "1.1", 3, 1486, "元/月", "yuan/month", "tekun_standard", TEKUN_SZ,
               role="current"),
        metric(SHENGZHOU, "1.1", 4, 6432, "户", "household", "dibao_households",
               "在册低保对象共6432户7769人。"),
        metric(SHENGZHOU, "1.1", 5, 7769, "人", "person", "dibao_persons", "在册低保对象共6432户7769人。"),
        metric(SHENGZHOU, "1.2", 6, 720, "人", "person", "certified_caregivers",
               "累计持证护理员720人。"),
        metric(SHENGZHOU, "1.1", 7, 12000, "元/人/年", "yuan/person/year", "dibao_standard_rural",
               RURAL_SZ, kind="level"),
    ]
    return make_page(SHENGZHOU, region="嵊州市", source="shengzhou", metrics=m,
                     sections=sections(SHENGZHOU, 2023),
                     title="市民政局2023年度工作总结与2024年度工作思路")


def xianju():  # a region with reports but none of the charted indicators
    return make_page(XIANJU, region="仙居县", source="xianju", metrics=[],
                     sections=sections(XIANJU, 2023), title="县民政局2023年前三季度工作总结")


def cixi():  # loaded after the snapshot: only the live file has it
    m = [metric(CIXI, "1.1", 0, 1005, "元/月", "yuan/month", "dibao_standard", DIBAO_CX),
         metric(CIXI, "1.1", 1, 1709, "元/月", "yuan/month", "tekun_standard", DIBAO_CX)]
    return make_page(CIXI, region="慈溪市", source="cixi", metrics=m, sections=sections(CIXI, 2021),
                     title="市民政局2021年工作总结")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiantai, Shengzhou and Xianju in the snapshot; Cixi loaded into the live file after it."""
    path = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    with connect(path) as con:
        load_pages(con, "run-1", [tiantai(), shengzhou(), xianju()], T0)
    snapshot(path)
    with connect(path) as con:
        load_pages(con, "run-2", [cixi()], later(60))
    return path


@pytest.fixture(scope="module")
def report(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report(warehouse, tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def html(report: Path) -> str:
    return report.read_text(encoding="utf-8")


def section_of(html: str, slug: str) -> str:
    match = re.search(rf'<section class="report-chart" id="{slug}".*?</section>', html, re.S)
    assert match, f"chart {slug} missing from the page"
    return match.group(0)


SVG = "{http://www.w3.org/2000/svg}"


def svg_of(section: str) -> ET.Element:
    """The chart of a section as an XML tree (ids: panel-<indicator>, point-/ring-<cell>,
    line-<indicator>-<region>-<first year>-<last year>)."""
    match = re.search(r"<svg.*?</svg>", section, re.S)
    assert match, "no chart in the section"
    return ET.fromstring(match.group(0))


def ids(element: ET.Element) -> set[str]:
    return {e.get("id") or "" for e in element.iter()} - {""}


def element(root: ET.Element, ident: str) -> ET.Element:
    found = [e for e in root.iter() if e.get("id") == ident]
    assert found, f"{ident} not in the chart"
    return found[0]


def texts(element: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in element.iter(f"{SVG}text")]


# --- pure steps --------------------------------------------------------------------------
def test_lines_join_only_consecutive_years() -> None:
    assert year_runs([2022]) == [[2022]]  # one value: a point, no line
    assert year_runs([2024, 2020, 2021, 2021]) == [[2020, 2021], [2024]]  # no line over 2022-23


def test_lines_join_only_points_of_one_kind() -> None:
    # a level after an amount is no change over time: consecutive years, no line
    assert comparable_runs([(2020, "amount"), (2021, "level"), (2022, "level")]) == \
        [[2020], [2021, 2022]]
    assert comparable_runs([(2021, None), (2020, None), (2023, None)]) == [[2020, 2021], [2023]]


def test_values_are_formatted_exactly() -> None:
    assert [format_value(v) for v in (950.0, 83_503_000.0, 8350.3, 0.5, None)] == \
        ["950", "83,503,000", "8,350.3", "0.5", ""]


def test_sentence_is_split_around_the_quantity_as_written() -> None:
    assert split_sentence("标准提高至950元/月。", "950元/月") == ("标准提高至", "950元/月", "。")
    assert split_sentence("无此数。", "950元") == ("无此数。", "", "")
    assert split_sentence("B类574户842人,C类4户8人", "4户") == ("B类574户842人,C类", "4户", "8人")


def test_status_says_why_a_figure_is_or_is_not_on_the_chart() -> None:
    values = pd.DataFrame({
        "year": pd.array([2022, 2022, 2022, 2022, None], dtype="Int64"),
        "picked": [True, False, False, False, False],
        "value_std": [950.0, 1041.0, 900.0, None, 60.0],
        "role": ["current", None, "previous", None, None],
    })
    assert value_status(values).tolist() == [PLOTTED, OTHER, PREVIOUS, NOT_COMPARABLE, NO_YEAR]


# --- the report from a warehouse ---------------------------------------------------------
def test_report_writes_a_page_and_a_png_per_chart(report: Path, html: str) -> None:
    assert report.name == "index.html"
    for slug in CHARTS:
        png = report.parent / f"{slug}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", slug
        with Image.open(png) as image:
            assert image.width >= 800 and image.height >= 150
        assert f'href="{slug}.png"' in html
        assert "<svg" in section_of(html, slug)
    # self-contained: nothing is fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_dibao_chart_keeps_the_new_value_with_its_provenance(html: str) -> None:
    dibao = section_of(html, "dibao_standard")
    assert "低保标准" in dibao and "Minimum living guarantee standard" in dibao
    assert re.search(r'class="status-plotted".*?950.*?yuan/person/month', dibao, re.S)
    assert re.search(r'class="status-previous".*?900', dibao, re.S)  # listed, not plotted
    assert re.search(r'class="status-previous".*?1,050', dibao, re.S)
    # provenance: sentence with the quantity marked, report title and 索引号
    assert "<mark>1134元/月</mark>" in dibao
    assert "市民政局2023年度工作总结与2024年度工作思路" in dibao and SHENGZHOU in dibao
    assert "无数据 no data: 仙居县" in dibao


def test_dibao_panel_holds_every_region_in_yuan_per_person_month(html: str) -> None:
    dibao = section_of(html, "dibao_standard")
    chart = svg_of(dibao)
    # one panel per indicator with data, never one per region or per unit
    assert {i for i in ids(chart) if i.startswith("panel-")} == \
        {"panel-dibao_standard", "panel-dibao_standard_rural"}
    panel = element(chart, "panel-dibao_standard")
    assert {f"point-{cell_id('天台县', 'dibao_standard', 2022)}",
            f"point-{cell_id('嵊州市', 'dibao_standard', 2023)}"} <= ids(panel)
    assert "yuan/person/month (元/人/月)" in texts(panel)
    # 1134元/月 under a per-person standard is read per person: no yuan/month axis anywhere
    assert not any(t.startswith("yuan/month") for t in texts(chart))
    assert re.search(r'<td class="num">1,134</td><td>yuan/month</td>\s*'
                     r'<td class="num std">1,134 <span class="unit">yuan/person/month</span>',
                     dibao)
    assert "figure(s) stated in yuan/month read in yuan/person/month" in dibao


def test_a_single_year_is_a_point_and_a_gap_is_not_bridged(html: str) -> None:
    dibao = svg_of(section_of(html, "dibao_standard"))
    shengzhou = cell_id("嵊州市", "dibao_standard", 2023)
    assert f"point-{shengzhou}" in ids(dibao)  # its only year: a point ...
    assert not [i for i in ids(dibao) if i.startswith("line-dibao_standard-嵊州市")]  # ... no line
    carers = svg_of(section_of(html, "certified_caregivers"))
    lines = {i for i in ids(carers) if i.startswith("line-certified_caregivers_new-天台县")}
    assert lines == {"line-certified_caregivers_new-天台县-2022-2023"}  # 2024 is missing: no line on
    assert f"point-{cell_id('天台县', 'certified_caregivers_new', 2025)}" in ids(carers)
    line = element(carers, "line-certified_caregivers_new-天台县-2022-2023")
    assert len(list(line.iter(f"{SVG}path"))) == 1


def test_kinds_and_converted_values_are_shown(html: str) -> None:
    dibao = section_of(html, "dibao_standard")
    rural = element(svg_of(dibao), "panel-dibao_standard_rural")
    assert "农村低保标准 · 存量 level" in texts(rural)  # the kind in the panel's title
    assert "1,000 ÷12" in texts(rural)  # 12000元/人/年 ÷ 12, labelled as converted
    point = element(rural, f"point-{cell_id('嵊州市', 'dibao_standard_rural', 2023)}")
    tooltip = point.find(f"{SVG}title")  # the browser's tooltip on hover
    assert tooltip is not None and "annual figure ÷ 12" in "".join(tooltip.itertext())
    assert re.search(r'<td class="num">12,000</td><td>yuan/person/year</td>\s*'
                     r'<td class="num std">1,000 \(÷12\) <span class="unit">yuan/person/month'
                     r'</span></td>\s*<td class="kind">存量 level</td>', dibao)
    assert "converted from an annual standard" in dibao
    carers = section_of(html, "certified_caregivers")
    assert '<td class="kind">增量 change</td>' in carers


def test_ambiguous_cells_are_counted_and_listed_with_their_sentences(html: str) -> None:
    tiantai = cell_id("天台县", "dibao_standard", 2022)  # 950 (提高至) and 1041 (12月起) stated
    assert re.search(r"Ambiguous cells: 1 of 11</strong>", html)
    assert "In the whole warehouse: 1 of 11 cells." in html
    listing = re.search(r'<section class="ambiguous" id="ambiguous">.*?</section>', html, re.S)
    assert listing, "no list of ambiguous cells"
    cell = re.search(rf'<details class="cell" id="{tiantai}">.*?</details>', listing.group(0), re.S)
    assert cell and len(re.findall("<details", listing.group(0))) == 1
    text = cell.group(0)
    assert "chart shows <strong>950 yuan/person/month</strong>" in text
    assert "<mark>950元/人/月</mark>" in text and "<mark>1041元/人/月</mark>" in text
    assert "12月起城乡低保标准再次提高至" in text and TIANTAI in text
    assert "调整前 previous" in text  # the 900 of the old→new pair is shown too, as such
    # the chart rings the point and links it to the list; so do the chart's notes and table
    dibao = section_of(html, "dibao_standard")
    chart = svg_of(dibao)
    assert f"ring-{tiantai}" in ids(chart)
    links = [a for a in chart.iter(f"{SVG}a")
             if a.get("{http://www.w3.org/1999/xlink}href") == f"#{tiantai}"]
    assert links and all(a.get("target") is None for a in links)  # stays on the page
    assert "950 ?" in texts(chart)
    assert f'<a href="#{tiantai}">天台县 城乡低保标准 2022</a>' in dibao
    assert f'<a class="ambiguous-link" href="#{tiantai}">' in dibao


def test_tables_hold_every_chart_value(html: str) -> None:
    tekun = section_of(html, "tekun_standard")
    for value in ("1,309", "1,486", "1,383"):
        assert f">{value}<" in tekun
    carers = section_of(html, "certified_caregivers")
    for value in ("81", "50", "66", "720"):
        assert f'<td class="num">{value}</td>' in carers
    recipients = section_of(html, "dibao_recipients")
    assert '<td class="num">6,432</td>' in recipients and '<td class="num">7,769</td>' in recipients


def test_chart_without_data_says_so(html: str) -> None:
    beds = section_of(html, "eldercare_beds")  # its only value has no year
    assert "no data in the warehouse" in beds and "no data: no value with a known year" in beds
    assert "without a known year are listed but not plotted" in beds
    assert "年份不明 year unknown" in beds and '<td class="num">60</td>' in beds
    home = section_of(html, "home_care_centers")
    assert "no data in the warehouse" in home and "<table" not in home


def test_report_reads_the_snapshot_not_the_live_file(warehouse: Path, html: str) -> None:
    assert "warehouse.snapshot.duckdb</code> (snapshot)" in html
    assert "慈溪市" not in html and "1,709" not in html  # loaded after the snapshot


def test_without_snapshot_or_cjk_font_it_reads_the_file_and_labels_in_latin(
        warehouse: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    live = tmp_path / "copy" / "warehouse.duckdb"
    live.parent.mkdir()
    shutil.copyfile(warehouse, live)
    with caplog.at_level(logging.WARNING, logger="analysis.report"):
        page = build_report(live, tmp_path / "out", font=None)
    assert "no CJK font found" in caplog.text
    html = page.read_text(encoding="utf-8")
    assert "(warehouse file, read-only)" in html
    tekun = section_of(html, "tekun_standard")
    assert ">1,709<" in tekun  # Cixi is in the live file
    drawn = " ".join(texts(svg_of(tekun)))
    assert "Cixi" in drawn and "Shengzhou" in drawn
    assert not re.search(r"[\u4e00-\u9fff]", drawn), "no Han text inside the fallback figure"
    assert "特困供养标准" in tekun  # the page itself keeps the Chinese


def test_an_empty_warehouse_gives_a_page_of_empty_charts(tmp_path: Path) -> None:
    empty = tmp_path / "empty.duckdb"
    connect(empty).close()  # the schema, no reports
    page = build_report(empty, tmp_path / "out")
    html = page.read_text(encoding="utf-8")
    assert "Ambiguous cells: 0 of 0</strong>" in html
    assert "None: every charted cell has one figure" in html
    for slug in CHARTS:
        assert "no data in the warehouse" in section_of(html, slug)
        assert (page.parent / f"{slug}.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_reports_a_missing_warehouse(tmp_path: Path) -> None:
    assert main(["--warehouse", str(tmp_path / "none.duckdb"), "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "index.html").exists()


# --- in a real browser -------------------------------------------------------------------
def chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1200,2000",
         *args],
        capture_output=True, text=True, timeout=120, check=True)


class _Figures(HTMLParser):
    """Collects body[data-rendered] and each figure's data-chart and data-size."""

    def __init__(self) -> None:
        super().__init__()
        self.rendered: str | None = None
        self.sizes: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "body":
            self.rendered = attr.get("data-rendered")
        elif tag == "figure" and "data-chart" in attr:
            self.sizes[attr["data-chart"] or ""] = attr.get("data-size") or ""


@pytest.fixture(scope="module")
def chromium_binary() -> str:
    binary = chromium()
    if binary is None:
        pytest.skip("no chromium binary (scripts/install-browser.sh installs Debian's chromium)")
    return binary


def test_page_renders_in_headless_chromium(chromium_binary: str, report: Path,
                                           tmp_path: Path) -> None:
    binary = chromium_binary  # requested first: skips before the report is built
    url = report.resolve().as_uri()
    dom = run_chromium(binary, tmp_path / "profile", "--dump-dom", url).stdout
    figures = _Figures()
    figures.feed(dom)
    assert figures.rendered == f"{len(CHARTS)} charts", figures.rendered
    assert sorted(figures.sizes) == sorted(CHARTS)
    for slug, size in figures.sizes.items():
        width, height = (int(n) for n in size.split("x"))
        assert width > 600 and height > 100, f"{slug} laid out at {size}"

    shot = tmp_path / "screenshot.png"
    run_chromium(binary, tmp_path / "profile", f"--screenshot={shot}", url)
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 20, "screenshot is blank"
    # the charts' region colours are on screen (tab10 blue/orange/green/red), not only text
    saturated = (pixels.max(axis=2) - pixels.min(axis=2)) > 80
    assert saturated.mean() > 0.001, "no coloured chart marks in the screenshot"
    shutil.copyfile(shot, report.parent / "screenshot.png")  # for a person to look at
