"""Rules decided on real pages (../shared/real_pages), each on small cases written here.

Every rule holds on at least two real pages or is a plainly general form; none names a
site or a page. The real-page floors themselves are in tests/test_eval_gate.py.
"""

from __future__ import annotations

from datetime import date

import pytest

from tasks.extract.head import parse_any_date, read_signature, split_head
from tasks.extract.body import opens_text
from tasks.extract.metadata import report_years
from tasks.extract.metrics import metrics_of_sentence, Sentence
from tasks.extract.outline import parse_outline, split_unbroken, toc_range
from tasks.extract.text import fold
from tests.pages import OPENING, CLOSING, article, extract, paragraphs

WRAP = "<html><head><meta charset='utf-8'></head><body><div>{}</div></body></html>"


def bare(*lines: str) -> str:
    """A page with no <title>, its lines in one block (a text opening wrapped as the
    evaluation wraps the real texts)."""
    return WRAP.format("".join(f"<p>{line}</p>" for line in lines))


SPEECH = "现在，我代表县人民政府向大会报告工作，请予审议，并请县政协委员和其他列席人员提出意见。"


# --- the headline block ----------------------------------------------------------------------------
def test_a_work_report_headline_block_gives_title_date_and_leaves_the_speech():
    report = extract(bare("2023年某县政府工作报告", "政 府 工 作 报 告", "——2023年1月5日在某县第十八届人民代表大会",
                          "第二次会议上", "县长 王某某", "各位代表：", SPEECH, OPENING)).report  # fmt: skip
    assert report.title == "2023年某县政府工作报告"
    assert report.publish_date == date(2023, 1, 5)  # the delivery note's date: no other date is given
    assert report.body_text.split("\n")[0] == "各位代表："
    assert (report.summary_year, report.plan_year) == (2022, 2023)  # a 政府工作报告 looks back a year


def test_title_and_delivery_note_on_one_line():
    report = extract(bare("政府工作报告 ——二○二二年一月二十一日在某省第六届人民代表大会第五次会议上 某省省长 李某",
                          "各位代表：", SPEECH)).report  # fmt: skip
    assert report.title == "政府工作报告" and report.publish_date == date(2022, 1, 21)


def test_a_dated_source_line_beats_a_clock_widget_and_the_issuer_under_the_title_is_the_publisher():
    report = extract(bare("2021/8/16 上午9:31:36 星期一", "某区民政局2021年度政府信息公开工作报告", "某区民政局",
                          "稿源: 某区政府网 2022-01-19", OPENING)).report  # fmt: skip
    assert report.title == "某区民政局2021年度政府信息公开工作报告"
    assert report.publish_date == date(2022, 1, 19)
    assert report.publisher == "某区民政局"  # the issuer printed under the title, not the site in 稿源


def test_a_bulletin_signed_under_its_title():
    report = extract(bare("某县二〇二三年国民经济和社会发展统计公报", "某县统计局", "2024年4月15日", OPENING)).report
    assert (report.publisher, report.written_date, report.summary_year) == ("某县统计局", date(2024, 4, 15), 2023)


def test_an_org_line_above_the_title_is_its_first_part():
    report = extract(bare("?", "某县民政局", "2025年政府信息公开工作年度报告", "?", "一、总体情况", OPENING)).report
    assert report.title == "某县民政局2025年政府信息公开工作年度报告"
    assert report.body_text.startswith("一、总体情况")


def test_bare_metadata_values_without_their_labels_are_read():
    report = extract(bare("1137152500444221X1/2022-26727573", "某县政府", "2022-01-24", "2022年某县政府工作报告",
                          "各位代表：", SPEECH)).report  # fmt: skip
    assert report.index_no == "1137152500444221X1/2022-26727573"
    assert report.publisher == "某县政府" and report.written_date is None  # values above the title: no signature


def test_a_document_number_line_under_the_title_is_the_doc_number_not_text():
    report = extract(bare("某省人民政府关于禁止新增建设项目的通告", "某政明电〔2022〕1号", OPENING)).report
    assert report.doc_number == "某政明电〔2022〕1号" and report.body_text.startswith("2023年以来")


def test_split_head_stops_at_the_first_line_of_text():
    head, rest = split_head(["2022年工作总结及2023年工作要点", "一、2022年工作总结", OPENING], opens_text)
    assert head.title == "2022年工作总结及2023年工作要点" and rest[0] == "一、2022年工作总结"


@pytest.mark.parametrize("text, expected", [("二○二二年一月二十一日", date(2022, 1, 21)), ("2023/8/7 23:36", date(2023, 8, 7)),
                                            ("——2023年2月2日在…会议上", date(2023, 2, 2)), ("2023年13月1日", None)])
def test_dates_in_any_of_the_pages_writings(text, expected):
    assert parse_any_date(text) == expected


# --- signatures ------------------------------------------------------------------------------------
def test_a_cover_letter_signs_before_the_document_it_issues():
    signature = read_signature(["各乡镇人民政府：", "现印发给你们，请认真组织实施。", "某县人民政府办公室", "2022年9月27日",
                                "关于促进房地产市场平稳健康发展的若干政策措施", OPENING, CLOSING])  # fmt: skip
    assert (signature.org, signature.signed) == ("某县人民政府办公室", date(2022, 9, 27))


def test_org_and_date_cells_of_a_table_are_no_signature():
    assert read_signature(["序号", "当事人名称", "某保险股份有限公司", "2024年1月5日", "罚款56万元", "浙江监管局"]).org is None


# --- labels ------------------------------------------------------------------------------------------
def test_the_label_decides_the_column_not_its_order_on_the_page():
    report = extract(article(paragraphs(OPENING), head="",
                             before="<p>公开日期：2023-06-20</p><p>发布日期：2023-06-15</p>")).report  # fmt: skip
    assert report.publish_date == date(2023, 6, 15)  # 发布日期 outranks 公开日期 wherever they stand


def test_a_labelled_value_ends_where_the_next_label_on_its_line_begins():
    report = extract(article(paragraphs(OPENING), before="<p>来源：某市日报 编辑：苏某 浏览量：</p>")).report
    assert report.publisher == "某市日报"


def test_bracketed_labels_and_a_date_glued_to_a_source():
    html = article(paragraphs(OPENING), before="<p>[成文日期] 2023-05-21 [发文字号] 某政发〔2023〕14号 [发布日期] 2023-05-30</p>"
                                                "<p>来源：20200325某日报</p>")  # fmt: skip
    report = extract(html).report
    assert (report.written_date, report.doc_number, report.publisher) == (date(2023, 5, 21), "某政发〔2023〕14号", "某日报")


def test_markup_in_meta_values_and_site_names_and_status_marks_leave_the_title():
    meta = "<meta name='ArticleTitle' content='为某某建设凝聚力量&lt;div&gt;——热烈祝贺大会开幕&lt;/div&gt;'>"
    assert extract(article(paragraphs(OPENING), head=meta, document_title="x")).report.title == "为某某建设凝聚力量——热烈祝贺大会开幕"
    site = "<meta name='ArticleTitle' content='某县人民政府网站——某县人民政府关于加强管理的意见'>"
    assert extract(article(paragraphs(OPENING), head=site, document_title="x")).report.title == "某县人民政府关于加强管理的意见"
    assert extract(article(paragraphs(OPENING), title="[已废止]某市关于加强调控的通知")).report.title == "某市关于加强调控的通知"


@pytest.mark.parametrize("title, years", [
    ("关于某区2022年国民经济和社会发展计划执行情况与2023年国民经济和社会发展计划草案的报告", (2022, 2023)),
    ("关于某县2022年预算执行情况和2023年预算草案的报告", (2022, 2023)),
    ("2023年政府工作报告（某区第十八届人民代表大会第三次会议）", (2022, 2023)),
    ("某县二〇二三年国民经济和社会发展统计公报", (2023, None)),
    ("2022年政府工作報告", (2021, 2022)),
    ("某市人民政府关于下达2023年安置任务的通知", (None, None)),
])  # fmt: skip
def test_report_years_of_real_titles(title, years):
    assert report_years(title) == years


# --- the body ----------------------------------------------------------------------------------------
def test_related_links_after_the_text_and_link_only_paragraphs_are_not_body():
    body = paragraphs(OPENING, CLOSING) + ("<p>相关链接：<a href='/1'>《</a><a href='/1'>某政策》政策解读</a></p>"
                                           "<p><a href='/2'>某政策明白卡</a></p>"
                                           "<p><a href='/3'>某县政府新闻办召开新闻发布会进行发布解读。</a></p>")  # fmt: skip
    assert extract(article(f"<div id='zoom'>{body}</div>")).report.body_text.split("\n") == [OPENING, CLOSING]


def test_attachments_are_recorded_and_a_short_notice_kept():
    body = paragraphs("现将有关事项通知如下，详见附件。", "某市人民政府", "2023年10月16日") + (
        "<p><a href='/download/downfile.jsp?filename=a.pdf'>某市关于下达安置任务的通知 (1).pdf</a></p>")
    extraction = extract(article(f"<div id='zoom'>{body}</div>"))
    assert extraction.report.body_text.endswith("2023年10月16日")
    assert [(a.name, a.url) for a in extraction.attachments] == [
        ("某市关于下达安置任务的通知 (1).pdf", "/download/downfile.jsp?filename=a.pdf")]


def test_a_table_of_contents_before_the_title_is_not_body_and_after_it_not_outline():
    top = extract(bare("目录", "第一部分 报告", "第二部分 预算表格", "一、2022年收支执行情况表", "第一部分 报告",
                       "关于某县2022年预算执行情况和2023年预算草案的报告", "某县财政局", "各位代表：", SPEECH)).report  # fmt: skip
    assert top.title == "关于某县2022年预算执行情况和2023年预算草案的报告" and top.body_text.startswith("各位代表：")
    assert toc_range(["某局2019年度决算公开报告", "目录", "第一部分", "一、部门职责", "二、机构设置", "第一部分", OPENING]) == (1, 5)
    sections = parse_outline(["第一部分:概况", "一、主要职能", "二、单位构成", "第二部分:报表", "第一部分:概况", "一、主要职能",
                              OPENING]).sections  # fmt: skip
    assert [(s.level, s.heading) for s in sections if s.heading] == [(0, "概况"), (1, "主要职能")]


# --- the outline -------------------------------------------------------------------------------------
def test_numbering_that_runs_on_across_parents_is_kept():
    sections = parse_outline(["一、稳定汽车消费", "（一）优化管理。正文。", "（二）扩大消费。正文。", "二、促进家电消费",
                              "（三）促进绿色消费。正文。", "（四）推动升级换代。正文。"]).sections  # fmt: skip
    assert [(s.level, s.label) for s in sections if s.level] == [(1, "一"), (2, "一"), (2, "二"), (1, "二"), (2, "三"), (2, "四")]


def test_headings_inside_unbroken_text_are_found():
    text = "为做好工作，现通知如下。" + "一、总体要求。坚持稳中求进。" + "推进落实。" * 60 + "二、重点任务。聚焦民生。" + "做好救助。" * 20
    sections = parse_outline(split_unbroken([text])).sections
    assert [(s.level, s.heading) for s in sections if s.level == 1] == [(1, "总体要求"), (1, "重点任务")]


def test_a_heading_ending_in_a_full_stop_is_its_whole_first_sentence():
    sections = parse_outline(["（一）暂停向拥有城区2套及以上住房的本县户籍居民家庭出售城区新建商品住房及二手住房。"]).sections
    assert sections[0].heading == "暂停向拥有城区2套及以上住房的本县户籍居民家庭出售城区新建商品住房及二手住房"


def test_a_list_begun_on_its_heading_line_is_a_list_not_headings():
    sections = parse_outline(["一、基本职能 (一)贯彻执行法律法规;制定政策。", "(二)负责登记管理工作;依法检查。",
                              "(三)负责拥军优属工作。"]).sections  # fmt: skip
    assert [(s.level, s.heading) for s in sections if s.level] == [(1, "基本职能")]


# --- metrics and subjects ----------------------------------------------------------------------------
def metrics_of(text: str):
    return metrics_of_sentence(Sentence(text, fold(text), lambda _: None))


def test_the_subject_is_the_counted_noun_after_a_verb_of_giving_or_building():
    got = {m.text: m.subject for m in metrics_of("对D类人才县政府给予10万元购房补贴，组建500余人流行病学调查队伍，横溪镇9个移民村成立公司。")}
    assert got == {"10万元": "购房补贴", "500余人": "流行病学调查队伍", "9个": "移民村"}


def test_a_growth_rate_or_a_share_measures_the_figure_before_it():
    got = [(m.text, m.subject) for m in metrics_of("全年地区生产总值2705.47亿元，比上年增长1.4%，占全市的比重为12.5%。")]
    assert got == [("2705.47亿元", "地区生产总值"), ("1.4%", "地区生产总值"), ("12.5%", "地区生产总值")]


def test_quantities_listed_after_nouns_listed_take_them_in_turn():
    got = [m.subject for m in metrics_of("地区生产总值、固定资产投资、规上工业增加值分别增长7%、9%、10%。")]
    assert got == ["地区生产总值", "固定资产投资", "规上工业增加值"]
    shared = [m.subject for m in metrics_of("对E类人才分别给予博士8万元、硕士5万元购房补贴。")]
    assert shared == ["购房补贴", "购房补贴"]


def test_a_subject_keeps_the_pages_own_characters():
    got = [m.subject for m in metrics_of("全年地區(qū)生產(chǎn)總值100.91億元。")]
    assert got == ["地區(qū)生產(chǎn)總值"]


def test_removed_or_cumulative_quantities_never_feed_a_stock_indicator():
    got = {m.text: (m.kind, m.indicator) for m in metrics_of(
        "核查退出低保68户，新纳入低保对象120户，全县低保对象5661户，城市低保累计发放23082户次。")}
    assert got["68户"] == ("removal", None)
    assert got["120户"] == ("change", "dibao_new_households")
    assert got["5661户"] == ("level", "dibao_households")
    assert got["23082户次"][0] == "cumulative" and got["23082户次"][1] != "dibao_households"


def test_what_kind_of_figure_each_is():
    kinds = {m.text: m.kind for m in metrics_of("全年地区生产总值564亿元，比上年增长2%，其中第一产业增加值21.58亿元，"
                                                "占生产总值的比重为3.8%，力争2024年增长6%。")}  # fmt: skip
    assert kinds == {"564亿元": "amount", "2%": "rate", "21.58亿元": "part", "3.8%": "share", "6%": "rate"}


def test_a_breakdown_in_brackets_after_a_figure_is_a_part_never_a_stock():
    got = {m.text: (m.kind, m.indicator) for m in metrics_of(
        "共新纳入农村低保对象620户1057人（A类34户86人，B类574户842人），全县低保对象5661户，"
        "共发放资金134.5万元（含价格临时补贴），2020年（全年）新增床位120张。")}  # fmt: skip
    assert got["620户"][0] == got["1057人"][0] == "change"
    assert {got[t] for t in ("34户", "86人", "574户", "842人")} == {("part", None)}
    assert got["5661户"] == ("level", "dibao_households")
    assert got["120张"][0] == "change"  # a year in brackets is no figure broken down
    joined = {m.text: m.indicator for m in metrics_of("全县孤儿及事实无人抚养儿童195人（事实无人抚养儿童166人，孤儿29人）。")}
    assert joined == {"195人": None, "166人": "unsupported_children", "29人": "orphans"}  # each part one of the joined


def test_numbered_names_and_data_rows_are_not_headings():
    sections = parse_outline(["一、先进集体", "1.某某村", "2.某某社区", "3.某某街道", "二、工作情况", "1.加强保障，落实资金。",
                              "表1 各县低保对象", "1 天台县 5661 8802"]).sections  # fmt: skip
    assert [(s.level, s.heading) for s in sections if s.level] == [(1, "先进集体"), (1, "工作情况"), (3, "加强保障，落实资金")]
    assert "1.某某村" in sections[0].text and "1 天台县 5661 8802" in sections[-1].text


def test_bylines_and_original_headline_notes_are_not_body():
    body = paragraphs("本报记者 张三", "原标题：某某县召开民政工作会议", OPENING, CLOSING)
    assert extract(article(f"<div id='zoom'>{body}</div>")).report.body_text.split("\n") == [OPENING, CLOSING]


def test_a_saved_gbk_page_without_a_charset_is_read_right_by_the_command_line(tmp_path):
    import json
    import subprocess
    import sys

    from tasks.settings import PROJECT_ROOT

    page = tmp_path / "page.html"  # no <meta charset>, no header: the bytes alone must say GBK
    page.write_bytes(("<html><head><title>某县民政局2023年工作总结</title></head><body><div id='zoom'>"
                      f"<p>{OPENING}</p><p>{CLOSING}</p></div></body></html>").encode("gbk"))  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "tasks.extract", str(page)], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    report = json.loads(done.stdout)["report"]
    assert report["title"] == "某县民政局2023年工作总结" and report["body_text"].startswith(OPENING[:20])


def test_an_empty_label_gives_way_to_a_filled_one_and_a_news_dateline_dates_the_page():
    filled = extract(article(paragraphs(OPENING), before="<p>发文日期：</p><p>发布时间：2025-06-03</p>")).report
    assert filled.publish_date == date(2025, 6, 3)
    empty = extract(article(paragraphs(OPENING), before="<p>发布日期：</p><p>时间：2025-06-03</p>")).report
    assert empty.publish_date is None  # the page says it has none: no looser label fills it
    news = extract(article(paragraphs(OPENING), before="<p>2005年08月16日　来源：新华网</p>")).report
    assert (news.publish_date, news.publisher) == (date(2005, 8, 16), "新华网")
