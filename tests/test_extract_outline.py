"""The section outline (tasks/extract/outline.py): markers, levels, headings, false headings, kinds, years."""

from __future__ import annotations

import pytest

from tasks.extract.outline import parse_outline

TEXT = "全年累计发放救助资金120万元，惠及困难群众300余人。"


def outline(*paragraphs: str, **kwargs) -> list[tuple[int, str | None, str | None]]:
    return [(s.level, s.label, s.heading) for s in parse_outline(list(paragraphs), **kwargs).sections if s.level or s.heading]


def headings(*paragraphs: str) -> list[str | None]:
    return [h for _, _, h in outline(*paragraphs)]


# --- markers and levels ------------------------------------------------------------------------
def test_every_marker_type_has_its_level():
    got = outline(
        "一、2023年工作总结", "（一）强化社会救助兜底。" + TEXT, "1.提高保障标准。" + TEXT, "（1）落实动态管理。" + TEXT,
        "①完善工作台账。" + TEXT, "2、加强临时救助。" + TEXT, "3．推进资金监管。" + TEXT, "(二)提升养老服务水平", TEXT,
        "二、2024年工作计划", TEXT,
    )  # fmt: skip
    assert got == [
        (1, "一", "2023年工作总结"), (2, "一", "强化社会救助兜底"), (3, "1", "提高保障标准"), (4, "1", "落实动态管理"),
        (5, "①", "完善工作台账"), (3, "2", "加强临时救助"), (3, "3", "推进资金监管"), (2, "二", "提升养老服务水平"),
        (1, "二", "2024年工作计划"),
    ]  # fmt: skip


def test_parents_follow_levels():
    sections = parse_outline(["一、总体情况", "（一）社会救助", "1.低保", TEXT, "2.特困", TEXT, "（二）养老服务", TEXT]).sections
    by_heading = {s.heading: s for s in sections}
    assert by_heading["低保"].parent_id == by_heading["社会救助"].section_id
    assert by_heading["养老服务"].parent_id == by_heading["总体情况"].section_id
    assert by_heading["总体情况"].parent_id is None


@pytest.mark.parametrize("first, second", [("第一部分", "第二部分"), ("第一章", "第二章"), ("第一篇 ", "第二篇　")])
def test_part_and_chapter_markers_are_level_0(first, second):
    got = outline(f"{first}工作成效", "一、社会救助", TEXT, f"{second}工作计划", "一、兜底保障", TEXT)
    assert got == [(0, "一", "工作成效"), (1, "一", "社会救助"), (0, "二", "工作计划"), (1, "一", "兜底保障")]


def test_numerals_past_ten():
    cn = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二", "十三"]
    paragraphs = [f"（{n}）第{n}项重点工作。{TEXT}" for n in cn] + [f"{n}、第{n}部分内容" for n in cn]
    got = outline(*paragraphs)
    assert [label for level, label, _ in got if level == 2] == cn
    assert [label for level, label, _ in got if level == 1] == cn


def test_skipped_level_keeps_the_marker_level_and_parent():
    sections = parse_outline(["一、主要工作", "1.兜牢民生底线。" + TEXT, "2.提升养老服务。" + TEXT]).sections
    assert [(s.level, s.label) for s in sections] == [(1, "一"), (3, "1"), (3, "2")]
    assert sections[1].parent_id == sections[0].section_id


# --- where a heading ends ------------------------------------------------------------------------
@pytest.mark.parametrize("paragraph, heading", [
    ("一、加强党建引领。全年召开党组会议12次。", "加强党建引领"),
    ("一、加强党建引领：全年召开党组会议12次。", "加强党建引领"),
    ("一、加强党建引领", "加强党建引领"),
    ("一、 加强党建引领，提升队伍素质", "加强党建引领，提升队伍素质"),
    ("一、加强党建引领一是完善学习制度；二是开展主题党日活动。", "加强党建引领"),
])  # fmt: skip
def test_heading_ends_at_its_terminator(paragraph, heading):
    assert outline(paragraph)[0] == (1, "一", heading)


def test_heading_fused_with_its_paragraph_is_cut_by_its_siblings_shape():
    got = headings(
        "（一）加强党的建设，提升队伍素质", TEXT,
        "（二）强化社会救助，兜牢民生底线全年累计发放救助资金120万元惠及困难群众300余人，保障水平持续提高",
        "（三）推进养老服务，增进老年福祉", TEXT,
    )  # fmt: skip
    assert got[1] == "强化社会救助，兜牢民生底线"


@pytest.mark.parametrize("paragraph, heading", [
    ("1.换届选举工作全面完成，培训村干部4期，培训620人次。", "换届选举工作全面完成"),
    ("1.加快推进养老服务设施建设，确保年内新建社区居家养老服务站10个", "加快推进养老服务设施建设"),
    ("1.实施困难老年人家庭适老化改造150户", "实施困难老年人家庭适老化改造150户"),
    ("1.切实加强党的建设，推进作风转变", "切实加强党的建设，推进作风转变"),
])  # fmt: skip
def test_an_item_written_as_a_sentence_has_its_first_clause_as_heading(paragraph, heading):
    assert outline(paragraph)[0] == (3, "1", heading)


def test_a_long_item_cut_by_one_clause_siblings_keeps_its_whole_first_clause():
    got = headings("1.村（居）民委员会换届后续工作全面完成，组织新任村（社区）干部培训4期，共培训村社干部620人次，"
                   "全面提升了新任干部的履职能力和服务水平。", "2.养老服务设施建设加快推进。" + TEXT, "3.婚姻登记服务规范有序。" + TEXT)  # fmt: skip
    assert got[0] == "村（居）民委员会换届后续工作全面完成"


def test_heading_fused_with_yishi_starts_inline_items():
    sections = parse_outline(["（一）深化基层治理一是完善村规民约；二是推进村务公开；三是加强社区工作者队伍建设。"]).sections
    assert [(s.level, s.label, s.heading) for s in sections] == [
        (2, "一", "深化基层治理"), (4, "一", "完善村规民约"), (4, "二", "推进村务公开"), (4, "三", "加强社区工作者队伍建设")]  # fmt: skip


# --- inline 一是 items ----------------------------------------------------------------------------
def test_inline_items_are_level_4_children():
    sections = parse_outline(["（一）加强养老服务。一是新建居家养老服务中心3家；二是改造敬老院2所，新增床位60张；三是培训护理员200人次。"]).sections
    assert [(s.level, s.label) for s in sections] == [(2, "一"), (4, "一"), (4, "二"), (4, "三")]
    assert {s.parent_id for s in sections[1:]} == {sections[0].section_id}
    assert sections[2].heading.startswith("改造敬老院2所") and "培训护理员" not in sections[2].text


def test_inline_items_under_a_level_4_heading_go_one_deeper():
    sections = parse_outline(["1.养老服务", "（1）机构建设。一是新建1家；二是改造2家。"]).sections
    assert [(s.level, s.label) for s in sections] == [(3, "1"), (4, "1"), (5, "一"), (5, "二")]


def test_inline_run_must_start_at_one():
    sections = parse_outline(["（一）加强养老服务。二是配套设施完善，三是服务队伍壮大。"]).sections
    assert [(s.level, s.label) for s in sections] == [(2, "一")]


# --- part headings without numbers ----------------------------------------------------------------
def test_unnumbered_part_headings_open_level_0_sections():
    sections = parse_outline(["2023年工作回顾", "一、社会救助", TEXT, "2024年工作计划", "一、兜底保障", TEXT],
                             summary_year=2023, plan_year=2024).sections  # fmt: skip
    parts = [s for s in sections if s.level == 0 and s.heading]
    assert [(p.heading, p.kind, p.year) for p in parts] == [("2023年工作回顾", "summary", 2023), ("2024年工作计划", "plan", 2024)]
    assert [s.parent_id for s in sections if s.level == 1] == [parts[0].section_id, parts[1].section_id]


@pytest.mark.parametrize("paragraph", ["存在的问题", "下一步工作打算", "主要成效"])
def test_short_part_names_are_headings(paragraph):
    assert outline(TEXT, paragraph, TEXT)[0] == (0, None, paragraph)


def test_a_long_sentence_mentioning_a_plan_is_not_a_part_heading():
    assert outline(TEXT, "按照年初制定的2023年工作计划，我局稳步推进各项工作任务。") == []


# --- false headings --------------------------------------------------------------------------------
@pytest.mark.parametrize("paragraph", [
    "一、二级残疾人护理补贴标准分别提高至每人每月300元和200元。",
    "一、二类低保对象按月足额发放保障金。",
    "二、三季度共开展养老机构安全检查12次。",
])  # fmt: skip
def test_numeral_lists_at_paragraph_start_are_not_headings(paragraph):
    got = outline("一、社会救助", TEXT, paragraph)
    assert got == [(1, "一", "社会救助")]


def test_lists_before_any_heading_are_not_headings():
    assert outline("一、二级残疾人护理补贴标准分别提高至每人每月300元和200元。", TEXT) == []


@pytest.mark.parametrize("paragraph", [
    "按照《社会救助暂行办法》第二十条第（一）项规定，将符合条件的家庭纳入低保。",
    "1.2万名志愿者参与疫情防控工作。",
    "3 个乡镇完成区域性养老服务中心建设。",
    "10 家养老机构通过星级评定。",
    "2023年全县共发放低保金1200万元。",
    "（2023）年度考核结果为优秀。",
])  # fmt: skip
def test_numbers_starting_a_sentence_are_not_headings(paragraph):
    assert outline("1.加强社会救助", TEXT, paragraph, TEXT) == [(3, "1", "加强社会救助")]


def test_a_number_breaking_the_sequence_is_text_with_a_warning():
    result = parse_outline(["（一）社会救助", TEXT, "（五）这一段不是标题", TEXT])
    assert [s.label for s in result.sections if s.level == 2] == ["一"]
    assert any("numbering" in w for w in result.warnings)


# --- kinds and years ---------------------------------------------------------------------------------
@pytest.mark.parametrize("heading, kind", [
    ("2023年工作总结", "summary"), ("主要工作完成情况", "summary"), ("工作成效", "summary"),
    ("2024年工作计划", "plan"), ("下一步工作思路", "plan"), ("明年工作打算", "plan"),
    ("存在的问题和不足", "problems"), ("工作亮点", "highlights"), ("特色工作", "highlights"),
    ("困难群众保障有力", "summary"),  # 困难群众 is a topic, not a problem
])  # fmt: skip
def test_kinds_from_headings(heading, kind):
    sections = parse_outline([f"一、{heading}", "（一）子项", TEXT], title="某县民政局2023年工作总结").sections
    assert [s.kind for s in sections] == [kind, kind]  # the child inherits


def test_years_follow_kinds_and_explicit_years():
    sections = parse_outline(["一、工作总结", TEXT, "二、存在问题", TEXT, "三、下一步计划", TEXT, "四、2025年展望", TEXT],
                             summary_year=2023, plan_year=2024).sections  # fmt: skip
    assert [(s.kind, s.year) for s in sections] == [("summary", 2023), ("problems", 2023), ("plan", 2024), ("plan", 2025)]


@pytest.mark.parametrize("title, kind", [
    ("某县2024年养老服务体系建设实施方案", "plan"),
    ("某县民政局2024年工作要点", "plan"),
    ("某县民政局2023年第三季度重点工作进展情况", "summary"),
    ("某县民政局2023年工作总结和2024年工作计划", "summary"),
    ("关于2023年度社会组织年检结果的公告", "summary"),
])  # fmt: skip
def test_the_title_gives_the_kind_of_untitled_sections(title, kind):
    assert parse_outline(["一、社会救助", TEXT], title=title).sections[0].kind == kind


def test_untagged_sections_take_the_kind_of_the_report():
    plan_only = parse_outline(["一、社会救助", TEXT], summary_year=None, plan_year=2024, title="某县民政局2024年工作要点").sections
    summary = parse_outline(["一、社会救助", TEXT], summary_year=2023, plan_year=2024, title="某县民政局2023年工作总结及2024年工作计划").sections
    assert (plan_only[0].kind, plan_only[0].year) == ("plan", 2024)
    assert (summary[0].kind, summary[0].year) == ("summary", 2023)


def test_every_character_belongs_to_a_section():
    result = parse_outline(["前言部分的文字。", "一、社会救助", TEXT, "（一）低保", TEXT])
    ids = {s.section_id for s in result.sections}
    assert all(result.section_at(i) in ids for i in range(len(result.body_text)))
    assert result.section_at(0) == "0"
