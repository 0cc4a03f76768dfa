"""Chrome stripping (tasks/extract/body.py): the body a reader sees, without the site around it."""

from __future__ import annotations

import pytest

from tasks.extract.body import clean_lines, is_chrome_line
from tasks.extract.vocab import page_rules
from tests.pages import CLOSING, MIDDLE, OPENING, TITLE, article, body_of, extract, paragraphs

NAV = "<div class='menu'><a href='/'>首页</a><a href='/a'>政务公开</a><a href='/b'>政务服务</a><a href='/c'>互动交流</a></div>"
CRUMB = "<div class='x1'>当前位置：<a href='/'>首页</a> &gt; <a href='/g'>政务公开</a> &gt; <a href='/p'>计划总结</a></div>"
FOOTER = ("<div class='x9'><p>主办单位：某县人民政府办公室 承办单位：某县大数据发展中心</p>"
          "<p><a href='/m'>网站地图</a> | <a href='/c'>联系我们</a> | <a href='/s'>网站申明</a></p>"
          "<p>网站标识码：3310000001 浙ICP备05012345号-1 浙公网安备 33100002000123号</p></div>")  # fmt: skip


def assert_clean(body: str) -> None:
    left = [m for m in page_rules()["chrome_markers"] if m in body]
    assert not left, f"chrome markers left in the body: {left}"


# --- the container ------------------------------------------------------------------------
def test_body_without_known_class_is_found_by_density():
    html = article(f"<div class='wrap'><h1>{TITLE}</h1><div class='q7'>{paragraphs(OPENING, MIDDLE, CLOSING)}</div></div>",
                   before=NAV + CRUMB, after=FOOTER)  # fmt: skip
    extraction = extract(html)
    body = extraction.report.body_text
    assert body.startswith("2023年以来") and body.endswith("落地见效。")
    assert_clean(body)
    assert any("densest" in w for w in extraction.warnings)  # the fallback says it was used


def test_body_in_a_table_cell_beside_a_link_column():
    links = "".join(f"<a href='/n{i}'>栏目{i}</a><br>" for i in range(8))
    html = article(f"<table><tr><td class='l'>{links}</td><td class='r'>{OPENING}<br>{MIDDLE}<br>{CLOSING}</td></tr></table>",
                   before=CRUMB, after=FOOTER)  # fmt: skip
    body = body_of(html)
    assert body.split("\n") == [OPENING, MIDDLE, CLOSING]


def test_body_cell_is_chosen_over_its_row_when_the_side_cell_is_plain_text():
    side = "<td class='l'>办公时间：工作日</td>"
    html = article(f"<table><tr>{side}<td class='r'>{OPENING}<br>{MIDDLE}<br>{CLOSING}</td></tr></table>")
    assert body_of(html).split("\n") == [OPENING, MIDDLE, CLOSING]


def test_one_paragraph_split_by_br_gives_paragraphs_and_headings():
    html = article(f"<div id='zoom'><p>{OPENING}<br/>一、下一步工作计划<br><br>{CLOSING}</p></div>")
    extraction = extract(html)
    assert extraction.report.body_text.split("\n") == [OPENING, "一、下一步工作计划", CLOSING]
    assert [(s.level, s.heading) for s in extraction.sections if s.level == 1] == [(1, "下一步工作计划")]


# --- cover, title and signature ------------------------------------------------------------
@pytest.mark.parametrize("date, signed", [("2024年1月5日", "2024-01-05"), ("2024-01-05", "2024-01-05"),
                                          ("二〇二四年一月五日", "2024-01-05"), ("2024年1月", None)])
def test_cover_block_goes_and_the_signature_stays_and_is_read(date, signed):
    body = paragraphs("某县民政局", date, TITLE, OPENING, MIDDLE, CLOSING, "某县民政局", date)
    report = extract(article(f"<div id='zoom'>{body}</div>")).report
    assert report.body_text.split("\n") == [OPENING, MIDDLE, CLOSING, "某县民政局", date]
    assert report.publisher == "某县民政局"  # no 发布机构 label: the signature names the issuer
    assert str(report.written_date) == str(signed)


def test_party_group_signature_and_disclosure_note_stay_in_the_body():
    body = paragraphs(OPENING, CLOSING, "中共某县民政局党组", "2024年1月5日", "（此件公开发布）")
    report = extract(article(f"<div id='zoom'>{body}</div>")).report
    assert report.body_text.split("\n") == [OPENING, CLOSING, "中共某县民政局党组", "2024年1月5日", "（此件公开发布）"]
    assert (report.publisher, str(report.written_date)) == ("中共某县民政局党组", "2024-01-05")


def test_signature_on_one_line_is_read():
    body = paragraphs(OPENING, CLOSING, "某县民政局　　2024年1月5日")
    report = extract(article(f"<div id='zoom'>{body}</div>")).report
    assert report.body_text.split("\n") == [OPENING, CLOSING, "某县民政局 2024年1月5日"]  # spaces normalised
    assert (report.publisher, str(report.written_date)) == ("某县民政局", "2024-01-05")


def test_bodies_signing_jointly_give_the_first_signer_and_a_label_beats_the_signature():
    signed = paragraphs(OPENING, "某县民政局 某县财政局", "某县人力资源和社会保障局", "2024年1月5日")
    report = extract(article(f"<div id='zoom'>{signed}</div>")).report
    assert report.publisher == "某县民政局"
    labelled = extract(article(f"<p>发布机构：县政府办公室</p><div id='zoom'>{signed}</div>")).report
    assert labelled.publisher == "县政府办公室" and str(labelled.written_date) == "2024-01-05"


def test_a_letter_before_the_document_it_issues_stays_and_signs_it():
    letter = paragraphs("县人民政府：", "根据县政府办通知要求，现将我局2023年工作总结报送如下，请审阅。",
                        "某县民政局", "2024年1月5日")  # fmt: skip
    report = extract(article(f"<div id='zoom'>{letter}{paragraphs(TITLE, OPENING, MIDDLE)}</div>")).report
    assert report.body_text.split("\n") == ["县人民政府：", "根据县政府办通知要求，现将我局2023年工作总结报送如下，请审阅。",
                                            "某县民政局", "2024年1月5日", TITLE, OPENING, MIDDLE]  # fmt: skip
    assert (report.publisher, str(report.written_date)) == ("某县民政局", "2024-01-05")


def test_a_short_notice_keeps_its_text_before_the_signature_and_attachment():
    notice = paragraphs("经审核，现将2023年度社会组织年检结果公告如下。", "一、年检合格的社会组织共120家。", "特此公告。",
                        "某县民政局", "2024年1月5日", "附件：年检合格社会组织名单")  # fmt: skip
    body = body_of(article(f"<div id='zoom'>{notice}</div>", title="关于2023年度社会组织年检结果的公告"))
    assert body.startswith("经审核") and body.endswith("附件：年检合格社会组织名单")


def test_linked_words_inside_a_sentence_are_kept():
    text = "按照<span><a href='/1'>《社会救助暂行办法》</a>和<a href='/2'>《特困人员认定办法》</a></span>要求，全年新增救助对象300人。"
    body = body_of(article(f"<div id='zoom'>{paragraphs(OPENING, text)}</div>"))
    assert "按照《社会救助暂行办法》和《特困人员认定办法》要求" in body


def test_title_split_over_two_lines_at_the_top_is_removed():
    body = paragraphs("某县民政局2023年工作总结", "及2024年工作计划", OPENING, CLOSING)
    assert body_of(article(f"<div id='zoom'>{body}</div>")).split("\n") == [OPENING, CLOSING]


def test_a_part_heading_that_is_only_part_of_the_title_is_kept():
    body = paragraphs("2023年工作总结", OPENING, "2024年工作计划", CLOSING)
    assert body_of(article(f"<div id='zoom'>{body}</div>")).split("\n")[0] == "2023年工作总结"


# --- widgets, related links, footers, breadcrumbs ------------------------------------------
@pytest.mark.parametrize("widget", [
    "分享到：<a>微信</a> <a>微博</a> <a>QQ空间</a>",
    "【<a>打印本页</a>】【<a>关闭窗口</a>】",
    "[ 打印 ] [ 关闭 ]",
    "打印 | 关闭",
    "【字体：<a>大</a> <a>中</a> <a>小</a>】",
    "扫一扫在手机打开当前页",
    "【我要纠错】【打印此页】【关闭本页】",
    "上一篇：<a>关于开展养老机构安全检查的通知</a>",
    "下一篇：<a>某县2022年民政工作要点</a>",
])  # fmt: skip
def test_widgets_are_removed(widget):
    body = body_of(article(f"<div id='zoom'>{paragraphs(OPENING, CLOSING)}<div>{widget}</div></div>"))
    assert body.split("\n") == [OPENING, CLOSING]


def test_widget_words_inside_a_sentence_are_kept():
    text = "分享经验做法，关闭不达标养老机构3家，打印并发放政策明白纸2000份。"
    assert text in body_of(article(f"<div id='zoom'>{paragraphs(OPENING, text)}</div>"))


def test_related_links_block_without_class_is_removed():
    related = ("<h3>相关链接</h3><ul><li><a href='/1'>某县民政局2022年工作总结</a></li>"
               "<li><a href='/2'>关于做好2024年困难群众救助工作的通知</a></li></ul>")  # fmt: skip
    body = body_of(article(f"<div id='zoom'>{paragraphs(OPENING, CLOSING)}{related}</div>"))
    assert body.split("\n") == [OPENING, CLOSING]


def test_related_reading_lines_at_the_end_are_removed():
    tail = paragraphs("相关阅读：", "某县2022年民政工作要点", "关于公布2023年养老服务补贴对象名单的公示")
    body = body_of(article(f"<div id='zoom'>{paragraphs(OPENING, CLOSING)}{tail}</div>"))
    assert body.split("\n") == [OPENING, CLOSING]


def test_link_lists_inside_the_container_are_removed():
    links = "<div>" + "".join(f"<a href='/{i}'>民政动态第{i}条信息标题</a> " for i in range(5)) + "</div>"
    body = body_of(article(f"<div id='zoom'>{paragraphs(OPENING)}{links}{paragraphs(CLOSING)}</div>"))
    assert body.split("\n") == [OPENING, CLOSING]


def test_footer_lines_are_removed_when_the_container_holds_them():
    inner = paragraphs(OPENING, MIDDLE, CLOSING) + FOOTER.replace("<div class='x9'>", "<div>")
    body = body_of(article(f"<div class='q7'>{inner}</div>"))
    assert body.split("\n") == [OPENING, MIDDLE, CLOSING]


@pytest.mark.parametrize("crumb", [
    "当前位置：首页 > 政务公开 > 计划总结",
    "您现在的位置：首页 > 信息公开",
    "您所在的位置：首页 >> 部门信息公开",
    "首页 > 政府信息公开 > 规划计划",
    "首页 » 民政局 » 工作总结",
])  # fmt: skip
def test_breadcrumbs_are_removed(crumb):
    body = body_of(article(f"<div id='zoom'><div>{crumb}</div>{paragraphs(OPENING, CLOSING)}</div>"))
    assert body.split("\n") == [OPENING, CLOSING]


def test_metadata_block_inside_a_density_container_leaves_no_label_or_value():
    meta = ("<table><tr><td>索引号：</td><td>113310000026833949/2023-00001</td><td>发布机构：</td><td>某县民政局</td></tr>"
            "<tr><td>公开方式：</td><td>主动公开</td><td>组配分类：</td><td>计划总结</td></tr></table>")  # fmt: skip
    html = article(f"<div class='q7'>{meta}{paragraphs(OPENING, MIDDLE, CLOSING)}</div>", before=NAV)
    extraction = extract(html)
    body = extraction.report.body_text
    assert body.startswith("2023年以来")
    assert "113310000026833949" not in body and "主动公开" not in body
    assert extraction.report.index_no == "113310000026833949/2023-00001"


def test_no_chrome_marker_survives_a_page_full_of_chrome():
    long_meta = ("索引号：113310000026833949/2023-00001 发布机构：某县民政局 公开方式：主动公开 组配分类：计划总结 "
                 "成文日期：2024-01-05 主题分类：民政 有效性：有效 发布日期：2024-01-05 浏览次数：1024 信息来源：某县民政局")  # fmt: skip
    inner = (f"<p>{long_meta}</p>" + paragraphs(OPENING, MIDDLE, CLOSING)
             + "<p>【打印本页】 【关闭窗口】 设为首页 | 网站地图</p><p>访问次数：88</p>")  # fmt: skip
    html = article(f"<div id='zoom'>{inner}</div>", before=NAV + CRUMB, after=FOOTER)
    body = body_of(html)
    assert_clean(body)
    assert body.split("\n") == [OPENING, MIDDLE, CLOSING]


# --- the line rules on their own ------------------------------------------------------------
@pytest.mark.parametrize("line, chrome", [
    ("浏览次数：12", True),
    ("发布日期：2024-01-05", True),
    ("信息来源：某县民政局", True),
    ("责任编辑：张三", True),
    ("（责任编辑：张三）", True),
    ("作者：某县民政局办公室", True),
    ("手机扫码阅读", True),
    ("版权所有：某县人民政府 技术支持：某科技公司", True),
    ("Copyright © 2024 某县人民政府 All Rights Reserved", True),
    ("相关部门按照职责分工，共同推进养老服务体系建设。", False),
    ("来源于社会捐赠的资金达到120万元，全部用于困难群众救助。", False),
])  # fmt: skip
def test_is_chrome_line(line, chrome):
    assert is_chrome_line(line) is chrome


def test_odd_spaces_inside_a_paragraph_collapse_to_one():
    text = "全年发放\u3000救助资金\u00a0\u00a0120万元，\u200b惠及\u2002困难群众300余人。"
    body = body_of(article(f"<div id='zoom'>{paragraphs(OPENING, text)}</div>"))
    assert body.split("\n")[1] == "全年发放 救助资金 120万元， 惠及 困难群众300余人。"


def test_clean_lines_keeps_body_order():
    assert clean_lines(["当前位置：首页", OPENING, "【打印】", CLOSING, "某县民政局", "2024年1月5日"]) == [
        OPENING, CLOSING, "某县民政局", "2024年1月5日"]
