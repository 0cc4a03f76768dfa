"""Metadata of a 政府信息公开 page (tasks/extract/metadata.py): labels in every layout, NULLs, fallbacks."""

from __future__ import annotations

from datetime import date

import pytest

from tasks.extract.metadata import parse_date, report_years
from tests.pages import CLOSING, MIDDLE, OPENING, TITLE, article, extract, paragraphs

BODY = f"<div id='zoom'>{paragraphs(OPENING, MIDDLE, CLOSING)}</div>"


def page_with(info: str, *, head: str = "", title_html: str | None = None, document_title: str | None = None) -> str:
    title_html = f"<h1>{TITLE}</h1>" if title_html is None else title_html
    return article(BODY, before=f"<div class='info'>{info}</div>{title_html}", head=head, document_title=document_title)


def report_of(info: str, **kwargs):
    return extract(page_with(info, **kwargs)).report


# --- label variants ---------------------------------------------------------------------------
@pytest.mark.parametrize("label, field, value, expected", [
    ("索引号：", "index_no", "113310000026833949/2023-00001", "113310000026833949/2023-00001"),
    ("信息索引号:", "index_no", "113310000026833949/2023-00001", "113310000026833949/2023-00001"),
    ("索 引 号：", "index_no", "113310000026833949/2023-00001", "113310000026833949/2023-00001"),
    ("索引号 ", "index_no", "113310000026833949/2023-00001", "113310000026833949/2023-00001"),
    ("发布机构：", "publisher", "某县民政局", "某县民政局"),
    ("发文机关：", "publisher", "某县民政局", "某县民政局"),
    ("发文单位：", "publisher", "某县民政局", "某县民政局"),
    ("公开责任部门：", "publisher", "某县民政局", "某县民政局"),
    ("发 布 机 构：", "publisher", "某县民政局", "某县民政局"),
    ("发文日期：", "publish_date", "2024-01-05", date(2024, 1, 5)),
    ("发布日期：", "publish_date", "2024年1月5日", date(2024, 1, 5)),
    ("公开日期：", "publish_date", "2024/01/05 09:30:00", date(2024, 1, 5)),
    ("成文日期：", "written_date", "2024-01-03", date(2024, 1, 3)),
    ("生成日期：", "written_date", "2024.1.3", date(2024, 1, 3)),
    ("公文生成日期：", "written_date", "2024-01-03", date(2024, 1, 3)),
    ("文号：", "doc_number", "某民发〔2024〕3号", "某民发〔2024〕3号"),
    ("发文字号：", "doc_number", "某民发〔2024〕3号", "某民发〔2024〕3号"),
    ("主题分类：", "topic", "民政、扶贫、救灾", "民政、扶贫、救灾"),
    ("组配分类：", "category", "计划总结", "计划总结"),
    ("分类：", "category", "规划计划", "规划计划"),  # a bare 分类 beside 索引号 is the genre
    ("体裁分类：", "category", "计划总结", "计划总结"),
    ("公开方式：", "disclosure_mode", "主动公开", "主动公开"),
    ("公开范围：", "disclosure_scope", "面向社会", "面向社会"),
    ("名称：", "title", "某县民政局2023年度工作总结", "某县民政局2023年度工作总结"),
    ("标题：", "title", "某县民政局2023年度工作总结", "某县民政局2023年度工作总结"),
    ("文件名称：", "title", "某县民政局2023年度工作总结", "某县民政局2023年度工作总结"),
])  # fmt: skip
def test_label_variants(label, field, value, expected):
    assert getattr(report_of(f"<p>{label}{value}</p>"), field) == expected


# --- layouts ----------------------------------------------------------------------------------
EXPECTED = {"index_no": "113310000026833949/2023-00001", "publisher": "某县民政局", "publish_date": date(2024, 1, 5),
            "doc_number": "某民发〔2024〕3号"}  # fmt: skip


def fields_of(report) -> dict:
    return {f: getattr(report, f) for f in EXPECTED}


@pytest.mark.parametrize("info", [
    # several label:value pairs on one line, with and without spaces between them
    "<p>索引号：113310000026833949/2023-00001 发布机构：某县民政局 发布日期：2024-01-05 文号：某民发〔2024〕3号</p>",
    "<p>索引号：113310000026833949/2023-00001发布机构：某县民政局　发布日期：2024-01-05　文号：某民发〔2024〕3号</p>",
    # a pipe table written as text
    "<p>索引号 | 113310000026833949/2023-00001 | 发布机构 | 某县民政局</p><p>发布日期 | 2024-01-05 | 文号 | 某民发〔2024〕3号</p>",
    # a 2-column table
    "<table><tr><td>索引号</td><td>113310000026833949/2023-00001</td></tr><tr><td>发布机构</td><td>某县民政局</td></tr>"
    "<tr><td>发布日期</td><td>2024-01-05</td></tr><tr><td>文号</td><td>某民发〔2024〕3号</td></tr></table>",
    # a 4-column table
    "<table><tr><th>索引号：</th><td>113310000026833949/2023-00001</td><th>发布机构：</th><td>某县民政局</td></tr>"
    "<tr><th>发布日期：</th><td>2024-01-05</td><th>文号：</th><td>某民发〔2024〕3号</td></tr></table>",
    # <ul><li> with the label in a span
    "<ul><li><span>索引号：</span>113310000026833949/2023-00001</li><li><span>发布机构：</span>某县民政局</li>"
    "<li><span>发布日期：</span>2024-01-05</li><li><span>文号：</span>某民发〔2024〕3号</li></ul>",
    # one label per line, its value on the next
    "<div>索引号</div><div>113310000026833949/2023-00001</div><div>发布机构</div><div>某县民政局</div>"
    "<div>发布日期</div><div>2024-01-05</div><div>文号</div><div>某民发〔2024〕3号</div>",
    # <dl> pairs
    "<dl><dt>索引号：</dt><dd>113310000026833949/2023-00001</dd><dt>发布机构：</dt><dd>某县民政局</dd>"
    "<dt>发布日期：</dt><dd>2024-01-05</dd><dt>文号：</dt><dd>某民发〔2024〕3号</dd></dl>",
])  # fmt: skip
def test_layouts(info):
    assert fields_of(report_of(info)) == EXPECTED


def test_metadata_table_inside_the_body_container_is_read_and_kept_out_of_the_body():
    info = ("<table><tr><td>索引号：</td><td>113310000026833949/2023-00001</td><td>发布机构：</td><td>某县民政局</td></tr>"
            "<tr><td>发布日期：</td><td>2024-01-05</td><td>文号：</td><td>某民发〔2024〕3号</td></tr></table>")  # fmt: skip
    extraction = extract(article(f"<div class='q7'>{info}<h1>{TITLE}</h1>{paragraphs(OPENING, MIDDLE, CLOSING)}</div>"))
    assert fields_of(extraction.report) == EXPECTED
    assert extraction.report.body_text.split("\n") == [OPENING, MIDDLE, CLOSING]


# --- stated empty: NULL, and never a neighbour's value -----------------------------------------
@pytest.mark.parametrize("info", [
    "<p>文号：无</p><p>发布机构：某县民政局</p>",
    "<p>文号： 发布机构：某县民政局</p>",
    "<p>文号：</p><p>发布机构：某县民政局</p>",
    "<table><tr><td>文号：</td><td></td><td>发布机构：</td><td>某县民政局</td></tr></table>",
    "<table><tr><td>文号：</td><td>&nbsp;</td></tr><tr><td>发布机构：</td><td>某县民政局</td></tr></table>",
    "<ul><li><span>文号：</span></li><li><span>发布机构：</span>某县民政局</li></ul>",
    "<p>文号 | — | 发布机构 | 某县民政局</p>",
])  # fmt: skip
def test_empty_value_is_null_and_does_not_take_the_next_label(info):
    report = report_of(info)
    assert report.doc_number is None
    assert report.publisher == "某县民政局"


def test_empty_label_does_not_fall_back_to_a_meta_tag():
    head = "<meta name='ContentSource' content='某县人民政府办公室'><meta name='PubDate' content='2024-02-01 08:00'>"
    report = report_of("<p>发布机构：</p><p>发布日期：无</p><p>索引号：113310000026833949/2023-00001</p>", head=head)
    assert report.publisher is None
    assert report.publish_date is None


def test_meta_tags_fill_fields_whose_label_is_absent():
    head = ("<meta name='ArticleTitle' content='某县民政局2023年工作总结'><meta name='PubDate' content='2024-02-01 08:00'>"
            "<meta name='ContentSource' content='某县民政局'>")  # fmt: skip
    report = report_of("<p>索引号：113310000026833949/2023-00001</p>", head=head, title_html="", document_title="某县人民政府")
    assert (report.title, report.publish_date, report.publisher) == ("某县民政局2023年工作总结", date(2024, 2, 1), "某县民政局")


def test_first_label_of_a_field_wins_over_a_later_one():
    report = report_of("<p>发布日期：2024-01-05</p><p>发布日期：2024-03-09</p>")
    assert report.publish_date == date(2024, 1, 5)


# --- 索引号 shapes ------------------------------------------------------------------------------
@pytest.mark.parametrize("written, stored", [
    ("1133070200259915X2/2022-00457", "1133070200259915X2/2022-00457"),
    ("XM02110-0101-2023-00001", "XM02110-0101-2023-00001"),
    ("4311030021/2021-00261", "4311030021/2021-00261"),
    ("１１３３０７０２００２５９９１５Ｘ２／２０２２－００４５７", "1133070200259915X2/2022-00457"),
    ("4311030021 / 2021-00261", "4311030021/2021-00261"),
])  # fmt: skip
def test_index_no_shapes(written, stored):
    extraction = extract(page_with(f"<p>索引号：{written}</p>"))
    assert extraction.report.index_no == stored
    assert not [w for w in extraction.warnings if "索引号" in w or "index_no" in w]


def test_odd_index_no_is_kept_with_a_warning():
    extraction = extract(page_with("<p>索引号：第三批</p>"))
    assert extraction.report.index_no == "第三批"
    assert any("unusual shape" in w for w in extraction.warnings)


# --- the title --------------------------------------------------------------------------------
def test_title_split_over_two_lines_is_joined():
    report = report_of("", title_html="<div class='title'>某县民政局2023年工作总结<br>及2024年工作计划</div>")
    assert report.title == TITLE


def test_title_in_two_blocks_is_joined():
    report = report_of("", title_html="<h1><p>某县民政局2023年工作总结</p><p>及2024年工作计划</p></h1>")
    assert report.title == TITLE


def test_title_missing_from_the_page_comes_from_the_document_title():
    report = report_of("", title_html="", document_title=f"{TITLE}_某县人民政府门户网站")
    assert report.title == TITLE
    assert (report.summary_year, report.plan_year) == (2023, 2024)


def test_title_label_beats_the_headline_guess():
    report = report_of("<p>标题：某县民政局2023年度工作总结</p>", title_html="<h1>通知公告</h1>")
    assert report.title == "某县民政局2023年度工作总结"


# --- dates and years ---------------------------------------------------------------------------
@pytest.mark.parametrize("raw, expected", [
    ("2024-01-05", date(2024, 1, 5)),
    ("2024- 01- 05 09: 30", date(2024, 1, 5)),
    ("2024年1月5日", date(2024, 1, 5)),
    ("２０２４年１月５日", date(2024, 1, 5)),
    ("2024.1.5", date(2024, 1, 5)),
    ("2024/01/05", date(2024, 1, 5)),
    ("2024-02-30", None),
    ("无", None),
    (None, None),
])  # fmt: skip
def test_parse_date(raw, expected):
    assert parse_date(raw) == expected


def test_unparseable_date_is_null_with_a_warning():
    extraction = extract(page_with("<p>发布日期：去年年底</p>"))
    assert extraction.report.publish_date is None
    assert any("publish_date" in w for w in extraction.warnings)


@pytest.mark.parametrize("title, years", [
    ("某县民政局2023年工作总结及2024年工作计划", (2023, 2024)),
    ("某县民政局2023年度工作总结与2024年度工作思路", (2023, 2024)),
    ("2023年上半年工作总结和下半年工作打算", (2023, 2023)),
    ("某区民政局2024年工作要点", (None, 2024)),
    ("某区民政局2022年工作情况报告", (2022, None)),
    ("某县民政局2023年第三季度重点工作进展情况", (2023, None)),
    ("某县2024年养老服务体系建设实施方案", (None, 2024)),
    ("关于2023年度社会组织年检结果的公告", (None, None)),
])  # fmt: skip
def test_report_years(title, years):
    assert report_years(title) == years


def test_empty_last_label_does_not_take_the_headline_below_it():
    report = report_of("<p>索引号：113310000026833949/2023-00001</p><p>文号：</p>")
    assert report.doc_number is None
    assert report.title == TITLE
