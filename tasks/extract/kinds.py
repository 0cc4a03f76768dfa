"""What kind of figure a metric is, and what scope it covers: general rules over its sentence.

Kinds (config/metric_rules.yaml `kinds`, a closed vocabulary):
  level       a stock at a point in time: 低保对象5661户, 标准950元/人/月
  amount      a flow over the period: 发放低保金8350.3万元, 办结4193件
  cumulative  a count of events summed over time: 累计发放23082户次
  change      a difference: 新增3家, 提高了20元, 比上年增加66间
  rate        a growth rate: 增长5.9%, 下降2个百分点
  share       a proportion: 占60%, 覆盖率98%, 不高于房价的70%
  part        a part of a figure just given: 其中…, or a breakdown in brackets right after
              it: 新纳入低保对象620户1057人（A类34户86人，B类…）
  removal     taken off a roll: 退出, 核减, 清退, 停发
  target      a planned or promised figure: 力争, 计划, 不少于 (in a plan)
  other       none of these (a duration, a threshold)
Scope: 城市 / 农村 / 城乡, where the clause says so for this figure.
Cue words are data; the first kind whose cues stand in the figure's clause before it wins,
in the order the configuration lists them.
"""

from __future__ import annotations

import re
from functools import lru_cache

from tasks.extract.vocab import metric_rules

KINDS = ("level", "amount", "cumulative", "change", "rate", "share", "part", "removal", "target", "other")
_PERCENT_UNITS = frozenset({"percent", "percentage-point", "permille", "bp"})
_COUNTS = frozenset({"person", "household", "item", "bed", "couple", "person-time", "household-time", "person-day"})
_OWN_TEXT_KINDS = ("target", "part")  # cues read in a text of their own, not the clause head
_REGEX_OPENERS = "([\\.^$*+?{|"  # a cue word opening with one of these does not open with a plain character


@lru_cache(maxsize=1)
def _rules() -> dict:
    rules = metric_rules()["kinds"]
    cues = [(kind, _in_place(re.compile("(?:" + "|".join(words) + ")"))) for kind, words in rules["cues"].items()]
    # the cues read in the clause head alone (all but target's and part's), in two patterns:
    # most figures have none of them, and two searches say so. The words that open with a
    # plain character go in one flat alternation, which lets the regex engine skip to those
    # characters; a word opening with a group or class (the rate words) would make it try
    # every word at every position, three times slower, so those go in the second
    head_cues = [word for kind, words in rules["cues"].items() if kind not in _OWN_TEXT_KINDS for word in words]
    plain = [word for word in head_cues if word[:1] not in _REGEX_OPENERS]
    others = [word for word in head_cues if word[:1] in _REGEX_OPENERS]
    return {
        "cues": cues,
        "any_head_cue": [_in_place(re.compile("|".join(words))) for words in (plain, others) if words],
        "standards": _in_place(re.compile("(?:" + "|".join(rules["standard_words"]) + ")")),
        "stocks": _in_place(re.compile("(?:" + "|".join(rules["stock_words"]) + ")")),
        "flows": _in_place(re.compile("(?:" + "|".join(rules["flow_words"]) + ")")),
        # 共359人通过考试: the verb after the count makes it an event too
        "flow_after": _in_place(re.compile("(?:次|人次)?(?:" + "|".join(rules["flow_words"]) + ")")),
        "scopes": [(scope, re.compile(pattern)) for scope, pattern in rules["scopes"].items()],
        "any_scope": re.compile("|".join(f"(?:{pattern})" for pattern in rules["scopes"].values()) or "(?!)"),
        "window": int(rules["window"]),
    }


# The cue patterns are searched in place, pattern.search(folded, start, end), rather than on
# a copy of the window: the same matches, since a search ends at `end` as a string would,
# and none of these patterns reads what lies before `start` (checked when they are built).
_LOOKS_BEFORE_START = re.compile(r"\(\?<[=!]|\^|\\[AbB]")  # a lookbehind, ^, \A, \b or \B


def _in_place(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """The pattern, once it is known to find in folded[start:end] exactly what it finds in place."""
    if _LOOKS_BEFORE_START.search(pattern.pattern):
        raise ValueError(f"config/metric_rules.yaml kinds: {pattern.pattern!r} looks before where a window starts")
    return pattern


def kind_of(folded: str, start: int, clause_from: int, unit_norm: str, listed_after: str | None = None,
            end: int | None = None) -> str:
    """The kind of the figure at folded[start:…], from the words of its clause before it;
    `listed_after`: the kind of the figure it follows in a list (增长6.1%、8%), which it
    shares unless a cue of its own says otherwise."""
    rules = _rules()
    head_from = max(clause_from, start - rules["window"])  # the head: folded[head_from:start]
    head_has_cue = any(pattern.search(folded, head_from, start) is not None for pattern in rules["any_head_cue"])
    for kind, pattern in rules["cues"]:
        if kind == "target":  # in the sentence's head, twice as long
            found = pattern.search(folded, max(0, start - 2 * rules["window"]), start)
        elif kind == "part":  # in the head and the 4 characters before its clause (其中，第一产业…)
            opened_from = max(0, clause_from - 4)
            if head_from == clause_from:  # one run of the text
                found = pattern.search(folded, opened_from, start)
            else:
                found = pattern.search(folded[opened_from:clause_from] + folded[head_from:start])
        elif head_has_cue:
            found = pattern.search(folded, head_from, start)
        else:
            continue  # no cue of the head's kinds in the head: not this one either
        if found:
            if kind == "rate" and unit_norm not in _PERCENT_UNITS:
                return "change"  # 比上年增加66间: a difference, not a rate
            if kind == "cumulative" and unit_norm == "yuan":
                return "amount"  # 累计发放资金3045万元: the year's total, not a count of events
            return kind
    if breakdown_opening(folded, start) >= 0:
        return "part"
    if listed_after is not None:
        return listed_after
    if unit_norm in _PERCENT_UNITS:
        return "share"
    if unit_norm.startswith("yuan/") or (unit_norm != "yuan" and rules["standards"].search(folded, head_from, start)):
        return "level"  # a standard or a rate per person is its level at the time
    if rules["stocks"].search(folded, head_from, start):
        return "level"
    if (unit_norm == "yuan" or rules["flows"].search(folded, head_from, start)
            or (end is not None and rules["flow_after"].match(folded, end, end + 6))):  # fmt: skip
        return "amount"  # 发放低保金8350.3万元, 办结4193件, 地区生产总值564亿元: over the period
    if unit_norm in _COUNTS:
        return "level"  # 低保对象5661户: a noun and its count, a stock
    return "other"


# A quantity with its unit just before an opening bracket: 1057人( / 8350.3万元( (not a date: 2020年()
_FIGURE_BEFORE_BRACKET = re.compile(r"\d\s*(?:[万亿千百])?(?![年月日号])[\u4e00-\u9fff%]{1,2}\s*$")
_BRACKET_SCAN = 120  # characters looked back for the bracket a figure stands in


def breakdown_opening(folded: str, start: int) -> int:
    """Where the bracket opens if the figure at folded[start] stands in brackets opened right
    after another figure: a breakdown of that figure (620户1057人(A类34户86人,B类574户842人))
    or a note on it (134.5万元(含…)), never a stock of its own. -1 when it does not."""
    if folded.find("(", max(0, start - _BRACKET_SCAN + 1), start) < 0:
        return -1  # no bracket opens in the characters looked back over (most figures)
    depth = 0
    for at in range(start - 1, max(-1, start - _BRACKET_SCAN), -1):
        char = folded[at]
        if char in "。;；":
            return -1
        if char == ")":
            depth += 1
        elif char == "(":
            if depth == 0:
                return at if _FIGURE_BEFORE_BRACKET.search(folded, max(0, at - 8), at) else -1
            depth -= 1
    return -1


def scope_of(folded: str, start: int, clause_from: int, subject: str | None) -> str | None:
    """城市 / 农村 / 城乡 when the figure's subject or clause names one (nearest first)."""
    text = (subject or "") + " " + folded[clause_from:start]
    if _rules()["any_scope"].search(text) is None:
        return None  # most clauses name no scope: one search instead of one per scope
    found: tuple[int, str] | None = None
    for scope, pattern in _rules()["scopes"]:
        for match in pattern.finditer(text):
            if found is None or match.start() > found[0]:
                found = (match.start(), scope)
    return found[1] if found else None
