"""Quantities in report text (tasks/extract/metrics.py), their years, subjects and indicators, and ranks."""

from __future__ import annotations

import pytest

from tasks.extract.metrics import extract_metrics
from tasks.extract.outline import parse_outline
from tasks.extract.ranks import extract_ranks
from tasks.records import Metric


def metrics(*paragraphs: str, summary_year: int | None = 2023, plan_year: int | None = 2024) -> list[Metric]:
    return extract_metrics(parse_outline(list(paragraphs), summary_year, plan_year))


def pairs(text: str) -> list[tuple[float, str]]:
    """(value_norm, unit_norm) of every metric of `text`, in order."""
    return [(m.value_norm, m.unit_norm) for m in metrics(text)]


def one(text: str) -> Metric:
    found = metrics(text)
    assert len(found) == 1, [(m.text, m.unit_norm) for m in found]
    return found[0]


# --- values, multipliers, units ----------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("全年投入资金1.2亿元。", [(120000000, "yuan")]),
    ("累计服务老年人3.6万人次。", [(36000, "person-time")]),
    ("发放高龄津贴1350.5万元。", [(13505000, "yuan")]),
    ("发放救助金 1200 万元，救助 35 人。", [(12000000, "yuan"), (35, "person")]),
    ("共有低保對象120戶、210人，發放資金35萬元。", [(120, "household"), (210, "person"), (350000, "yuan")]),
    ("新增养老床位１２０张，护理型床位占比达６０％。", [(120, "bed"), (60, "percent")]),
    ("建成居家养老服务中心12家，培育社会组织8个。", [(12, "item"), (8, "item")]),
    ("完成适老化改造320户，建设面积1500平方米。", [(320, "household"), (1500, "sqm")]),
    ("办理结婚登记1520对、离婚登记430对。", [(1520, "couple"), (430, "couple")]),
    ("办结时限压缩至3个工作日。", [(3, "workday")]),
])  # fmt: skip
def test_values_and_units(text, expected):
    assert pairs(text) == expected


def test_value_and_unit_as_written_are_kept():
    metric = one("全年发放救助资金8350.3万元。")
    assert (metric.value, metric.unit, metric.value_norm, metric.text) == (8350.3, "万元", 83503000, "8350.3万元")


def test_sessions_are_counted_but_an_ordinal_session_is_not():
    assert [(m.value_norm, m.counter) for m in metrics("举办养老护理员培训班3期，第4期将于下半年开班。")] == [(3, "期")]


def test_counter_of_counted_items():
    assert [(m.unit_norm, m.counter) for m in metrics("建成儿童之家5个，开展活动30场。")] == [("item", "个"), ("item", "场")]


def test_thousands_separators():
    assert pairs("累计发放资金1,250,000元。") == [(1250000, "yuan")]


# --- qualifiers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value, qualifier", [
    ("救助困难群众300余人。", 300, "over"),
    ("筹集善款30多万元。", 300000, "over"),
    ("惠及群众3.6万余人次。", 36000, "over"),
    ("覆盖老年人约1200人。", 1200, "approx"),
    ("走访困难家庭近200户。", 200, "approx"),
    ("参与志愿者50人左右。", 50, "approx"),
    ("群众满意率达95%以上。", 95, "over"),
    ("审批时限控制在5个工作日以内。", 5, "le"),
    ("护理型床位占比不低于55%。", 55, "ge"),
    ("累计发放补贴超过2000万元。", 20000000, "over"),
    ("救助人数不少于500人。", 500, "ge"),
    ("全年发放救助资金120万元。", 1200000, None),
])  # fmt: skip
def test_qualifiers(text, value, qualifier):
    metric = one(text)
    assert (metric.value_norm, metric.qualifier) == (value, qualifier)


# --- ranges and pairs ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, low, high, unit_norm", [
    ("每个乡镇培育1-2家社会组织。", 1, 2, "item"),
    ("服务费用下降30%-50%。", 30, 50, "percent"),
    ("每月补助200～300元。", 200, 300, "yuan/month"),
    ("建设3至5个示范点。", 3, 5, "item"),
])  # fmt: skip
def test_ranges(text, low, high, unit_norm):
    metric = one(text)
    assert (metric.value_norm, metric.value_high_norm, metric.unit_norm) == (low, high, unit_norm)


@pytest.mark.parametrize("text, expected", [
    ("农村低保标准从每人每月860元调整为950元。", [(860, "yuan/person/month", "previous"), (950, "yuan/person/month", "current")]),
    ("补助标准由1100元提高到1280元。", [(1100, "yuan", "previous"), (1280, "yuan", "current")]),
    ("护理补贴由每月150元/人提高至180元/人。", [(150, "yuan/person/month", "previous"), (180, "yuan/person/month", "current")]),
    ("平均办理时间从15个工作日压缩至5个工作日。", [(15, "workday", "previous"), (5, "workday", "current")]),
    ("城市低保标准由每人每月1,050元提高至1,120元。",
     [(1050, "yuan/person/month", "previous"), (1120, "yuan/person/month", "current")]),
])  # fmt: skip
def test_old_to_new_pairs_keep_both_values_with_roles(text, expected):
    assert [(m.value_norm, m.unit_norm, m.role) for m in metrics(text)] == expected


# --- the period before the number, colons ------------------------------------------------------------
@pytest.mark.parametrize("text, unit_norm", [
    ("城市低保标准为每人每月1120元。", "yuan/person/month"),
    ("特困人员基本生活标准达到人均每月1460元。", "yuan/person/month"),
    ("孤儿基本生活费月人均发放2100元。", "yuan/person/month"),
    ("月最低生活保障标准提高至1080元。", "yuan/month"),
    ("护理补贴标准为：每月240元。", "yuan/month"),
    ("重度残疾人护理补贴标准为：150元/月。", "yuan/month"),
    ("困难残疾人生活补贴标准为:每人每年1800元。", "yuan/person/year"),
    ("低保标准达到1120元/人/月。", "yuan/person/month"),
    ("城乡低保标准统一为每人每月1120元，比上年提高8%。", "yuan/person/month"),
    ("每年安排资金50万元。", "yuan/year"),
    ("人均月补助标准提高到320元。", "yuan/person/month"),
    ("每月每人发放护理补贴200元。", "yuan/person/month"),
    ("一次性发放慰问金500元。", "yuan"),
    ("散居孤儿基本生活费每人1650元/月。", "yuan/person/month"),
    ("高龄津贴按年均600元/人发放。", "yuan/person/year"),
    ("一次性补助500元/人。", "yuan/person"),
])  # fmt: skip
def test_period_before_the_number(text, unit_norm):
    assert metrics(text)[0].unit_norm == unit_norm


# --- runs and lists ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("实施临时救助3次90.9万元。", [(3, "item"), (909000, "yuan")]),
    ("新纳入低保2户8人，发放10050元。", [(2, "household"), (8, "person"), (10050, "yuan")]),
    ("救助流浪乞讨人员5批12人次。", [(5, "item"), (12, "person-time")]),
])  # fmt: skip
def test_runs_of_quantities(text, expected):
    assert pairs(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("城乡低保标准分别提高至1230元/月、1015元/月。", [(1230, "yuan/month"), (1015, "yuan/month")]),
    ("三个项目分别投入2500、1700、4200万元。", [(25000000, "yuan"), (17000000, "yuan"), (42000000, "yuan")]),
    ("一、二级重度残疾人护理补贴分别为300和200元。", [(300, "yuan"), (200, "yuan")]),
    ("新建和改建老年食堂15家、20家。", [(15, "item"), (20, "item")]),
])  # fmt: skip
def test_lists_share_their_unit(text, expected):
    assert pairs(text) == expected


def test_list_enumerators_are_not_quantities():
    assert pairs("1、新增养老床位200张。") == [(200, "bed")]


# --- Chinese numerals -----------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("新建两个区域性养老服务中心。", [(2, "item")]),
    ("共培育三家社会组织。", [(3, "item")]),
    ("完成十二个村的地名普查。", [(12, "item")]),
])  # fmt: skip
def test_chinese_numeral_counts_after_a_cue(text, expected):
    assert pairs(text) == expected


@pytest.mark.parametrize("text", [
    "坚持“两个确立”，做到“两个维护”。",
    "深化“三服务”活动。",
    "推进“一件事”集成改革。",
    "一是加强领导，二是完善机制。",
    "实施“新建两个中心”提升行动。",
])  # fmt: skip
def test_chinese_numeral_names_are_not_counts(text):
    assert pairs(text) == []


# --- what is not a metric ------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "2023年以来，我局扎实推进各项工作。",
    "2023年5月12日召开全县民政工作会议。",
    "1-12月累计完成各项工作任务。",
    "2021-2035年养老服务设施布局规划已印发。",
    "第三季度开展专项检查，第二批名单已公示。",
    "二期工程已开工建设。",
    "按照天政办发〔2021〕61号文件要求开展工作。",
    "联系电话：0576-83012345，13800138000。",
    "邮政编码：317200。",
    "构建“3+1”服务体系和“1+8+X”工作格局。",
    "成功创建5A级社会组织。",
    "编制“十四五”民政事业发展规划。",
    "储备N95口罩和防护服。",
    "打造15分钟养老服务圈。",
    "第36次会议审议通过。",
    "服务中心设在B2栋。",
    "推广5G应用场景。",
])  # fmt: skip
def test_not_metrics(text):
    assert pairs(text) == []


def test_numbers_next_to_a_name_keep_the_real_quantity():
    assert pairs("储备N95口罩2000只。") == [(2000, "item")]


# --- years and sections ---------------------------------------------------------------------------------
def test_metric_years_follow_their_section_and_explicit_years():
    found = metrics(
        "一、2023年工作总结", "全年发放救助资金120万元。", "2022年同期发放救助资金100万元。",
        "二、2024年工作计划", "计划新增养老床位200张。", "三、存在的问题", "护理员缺口达到80人。",
    )  # fmt: skip
    assert [(m.value_norm, m.year) for m in found] == [(1200000, 2023), (1000000, 2022), (200, 2024), (80, 2023)]


def test_years_in_titles_and_spans_do_not_set_the_year():
    found = metrics("二、下一步工作思路", "落实《2021-2025年养老服务规划》，新增床位300张。")
    assert [(m.value_norm, m.year) for m in found] == [(300, 2024)]


def test_metrics_carry_their_section():
    result = parse_outline(["一、社会救助", "发放资金120万元。", "二、养老服务", "新增床位200张。"], 2023, 2024)
    found = extract_metrics(result, "IDX-1")
    headings = {s.section_id: s.heading for s in result.sections}
    assert [(headings[m.section_id], m.index_no) for m in found] == [("社会救助", "IDX-1"), ("养老服务", "IDX-1")]
    assert [m.ordinal for m in found] == [0, 1]


def test_sentence_and_text_are_as_on_the_page():
    metric = one("发放救助金１２０万元。")
    assert (metric.text, metric.sentence, metric.value_norm) == ("１２０万元", "发放救助金１２０万元。", 1200000)


# --- ranks -----------------------------------------------------------------------------------------
def ranks(text: str) -> list[tuple[int, str | None, bool]]:
    return [(r.rank, r.scope, r.tied) for r in extract_ranks(parse_outline([text]))]


@pytest.mark.parametrize("text, expected", [
    ("养老服务工作考核排名全市第一。", [(1, "全市", False)]),
    ("社会救助绩效评价位列全省第3名。", [(3, "全省", False)]),
    ("完成率120%，市排名第二。", [(2, "全市", False)]),
    ("婚姻登记满意度并列全市第一。", [(1, "全市", True)]),
    ("民政工作考核居全县第一位。", [(1, "全县", False)]),
    ("在全省民政工作考核中位列第二。", [(2, "全省", False)]),
    ("工作绩效考核位居台州市第一。", [(1, "台州市", False)]),
])  # fmt: skip
def test_ranks(text, expected):
    assert ranks(text) == expected


@pytest.mark.parametrize("text", ["第一批试点已完成。", "召开第二次推进会。", "落实第一责任人制度。", "全市第一个智慧养老院建成。"])
def test_ordinals_are_not_ranks(text):
    assert ranks(text) == []


def test_ranks_are_not_metrics():
    assert pairs("养老服务考核排名全市第1名。") == []


def test_rank_subject_is_what_was_ranked():
    found = extract_ranks(parse_outline(["在全省民政工作考核中位列第二。"]))
    assert found[0].subject == "民政工作考核"


def test_subjects_drop_leading_change_verbs_and_trailing_adverbs():
    from tasks.extract.subjects import find_subject
    from tasks.extract.text import fold

    for sentence, number, expected in [
        ("今年7月，我县城市最低生活保障标准再次提高到800元/人/月", "800", "城市最低生活保障标准"),
        ("调整全县城乡低保标准从900元/月至960元/月", "900", "城乡低保标准"),
        ("提高特困供养标准至1300元/月", "1300", "特困供养标准"),
    ]:
        folded = fold(sentence)
        start = folded.index(number)
        assert find_subject(folded, start, start + len(number)) == expected
