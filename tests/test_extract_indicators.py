"""What a number measures (tasks/extract/subjects.py) and the indicator vocabulary (config/indicators.csv)."""

from __future__ import annotations

import re

import pytest

from tasks.extract.metrics import extract_metrics
from tasks.extract.outline import parse_outline
from tasks.extract.subjects import assign_indicator, find_subject
from tasks.extract.text import fold
from tasks.extract.vocab import indicators, metric_rules, units


def indicator_of(text: str) -> list[tuple[float, str, str | None]]:
    return [(m.value_norm, m.unit_norm, m.indicator) for m in extract_metrics(parse_outline([text], 2023, 2024))]


# --- the vocabulary as data ------------------------------------------------------------------------
def test_vocabulary_has_enough_unique_codes_with_valid_patterns_and_units():
    rows = indicators()
    codes = [row["code"] for row in rows]
    assert len(codes) >= 40 and len(set(codes)) == len(codes)
    known_units = {norm for norm, _ in units().values()} | set(metric_rules()["period_prefixes"])
    for row in rows:
        re.compile(row["pattern"])
        assert row["name_zh"], row["code"]
        listed = {u.strip() for u in row["unit_norms"].split(";") if u.strip()}
        assert listed <= known_units, (row["code"], listed - known_units)


# --- core indicators from typical phrasings ----------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("城乡低保标准提高至每人每月1120元。", "dibao_standard"),
    ("全县最低生活保障标准达到1120元/月。", "dibao_standard"),
    ("城市低保标准为每人每月1200元。", "dibao_standard_urban"),
    ("农村低保标准为每人每月980元。", "dibao_standard_rural"),
    ("特困人员基本生活标准提高至每人每月1460元。", "tekun_standard"),
    ("特困供养标准提高到1460元/人/月。", "tekun_standard"),
    ("孤儿基本生活费标准提高至每人每月2100元。", "orphan_allowance_standard"),
    ("全县新增养老床位260张。", "eldercare_beds_new"),  # a change: never the stock of beds
    ("新增护理型床位120张。", "nursing_beds_new"),
    ("全县持证养老护理员达到420人。", "certified_caregivers"),
    ("全年办理结婚登记1520对。", "marriage_registrations"),
    ("办理离婚登记430对。", "divorce_registrations"),
    ("实施临时救助860人次。", "temporary_assistance_cases"),
    ("发放临时救助资金320万元。", "temporary_assistance_spending"),
    ("现有特困供养人员850人。", "tekun_persons"),
    ("完成困难老年人家庭适老化改造300户。", "elderly_home_adaptation"),
    ("全县登记社会组织586家。", "social_organizations"),
    ("福利彩票销售1.2亿元。", "welfare_lottery_sales"),
])  # fmt: skip
def test_core_indicators_resolve(text, expected):
    assert indicator_of(text)[0][2] == expected


def test_unit_constraints_keep_households_apart_from_persons():
    assert indicator_of("截至年底，全县共有低保对象3012户4869人。") == [
        (3012, "household", "dibao_households"), (4869, "person", "dibao_persons")]  # fmt: skip


def test_a_standard_pattern_does_not_take_a_headcount():
    found = indicator_of("城乡低保标准调整后惠及低保对象4800人。")
    assert [i for _, u, i in found] == ["dibao_persons"]


def test_assign_indicator_checks_the_unit_before_the_pattern():
    assert assign_indicator("低保标准", "", "yuan/person/month") == "dibao_standard"
    assert assign_indicator("低保标准", "", "bed") is None
    assert assign_indicator(None, "全县新增养老床位", "bed") == "eldercare_beds"  # no subject: the text before


# --- subjects -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("sentence, number, subject", [
    ("截至年底，全县共有特困人员850人。", "850", "特困人员"),
    ("2023年以来，累计发放救助资金120万元。", "120", "发放救助资金"),
    ("完成困难老年人家庭适老化改造300户。", "300", "完成困难老年人家庭适老化改造"),
    ("建成1家社区发展基金会。", "1", "社区发展基金会"),  # a bare verb: the noun after the number
    ("新纳入低保对象120户。", "120", "新纳入低保对象"),
    ("1.新建居家养老服务中心3家。", "3", "新建居家养老服务中心"),  # the list marker is not part of it
    ("三是新增养老床位200张。", "200", "新增养老床位"),
    ("全县村（居）委会成员2340名。", "2340", "村(居)委会成员"),  # a short parenthetical stays in
    ("建成敬老院3所（其中护理床位80张）。", "80", "护理床位"),
    ("救助困难群众120人，惠及300人。", "300", None),  # 惠及 alone says nothing: no subject, not a wrong one
])  # fmt: skip
def test_subjects(sentence, number, subject):
    folded = fold(sentence)
    start = folded.index(number)
    end = start + len(number) + 1
    assert find_subject(folded, start, end) == subject


def test_the_second_value_of_a_pair_shares_the_subject():
    found = extract_metrics(parse_outline(["低保标准由每人每月1050元提高至1120元，惠及低保对象4800人。"]))
    assert [m.subject for m in found[:2]] == ["低保标准", "低保标准"]
    assert found[2].subject.endswith("低保对象") and found[2].indicator == "dibao_persons"
