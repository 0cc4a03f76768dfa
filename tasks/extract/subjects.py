"""What a number measures: the subject phrase around it, and its canonical indicator.

Works on folded sentences (tasks.extract.text.fold). The subject is the phrase before the
number within its clause, trimmed of time and scope adverbials at the front and of
verbs and links at the end ("截至年底，我县共有低保对象5661户" → "低保对象"). When
nothing is left, the phrase after the number, the previous quantity's subject, or the
head of the previous clause stands in, in that order.
"""

from __future__ import annotations

import re
from functools import lru_cache

from tasks.extract.vocab import indicators, metric_rules

_CJK = re.compile(r"[\u4e00-\u9fff]")
_TWO_CJK = re.compile(r"[\u4e00-\u9fff][^\u4e00-\u9fff]*[\u4e00-\u9fff]")  # at least two (no list of them built)
_NOT_CJK = re.compile(r"[^\u4e00-\u9fff]")
_POST_QUALIFIER = re.compile(r"^(以上|以下|以内|左右)")


@lru_cache(maxsize=1)
def _rules() -> dict:
    rules = metric_rules()["subject"]
    leading = "|".join(f"(?:{p})" for p in rules["strip_leading"])
    return {
        "delimiters": set(rules["clause_delimiters"]),
        "max_length": int(rules["max_length"]),
        "leading": re.compile(rf"^(?:{leading})"),
        "trailing": re.compile("(?:" + "|".join(map(re.escape, sorted(rules["strip_trailing"], key=len, reverse=True))) + ")$"),
        "verbs": set(rules["bare_verbs"]),
        # a delimiter or a decimal digit, as one class (which the regex engine skips to)
        "phrase_stop": re.compile("[" + "".join(map(re.escape, set(rules["clause_delimiters"]))) + r"\d]"),
        "head_stop": re.compile(r"(实现|与|和|在|对|按|将|已|被|经|通过|根据|实行|达到|提高|调整|挂钩)"),
        "change_head": re.compile(rules["change_head_pattern"]),
        "object_verb_end": re.compile("(?:" + "|".join(map(re.escape, sorted(rules["object_verbs"], key=len, reverse=True))) + ")$"),
        "after_opens_no_noun": re.compile(rules["after_opens_no_noun_pattern"]),
        "place_head": re.compile(rules["place_head_pattern"]),
        "generic_subject": re.compile(rules["generic_subject_pattern"]),
        "after_stop": re.compile(rules["after_stop_pattern"]),
        # the last delimiter or closing parenthesis before a position, found in one C-level
        # backtrack (re.match with endpos) instead of a Python loop over characters
        "last_stop": re.compile(".*[" + "".join(map(re.escape, set(rules["clause_delimiters"]) | set(")）"))) + "]",
                                re.DOTALL),
    }


def clause_head(sentence: str, position: int) -> str:
    """The text from the start of the clause holding `position` up to it."""
    return sentence[clause_start(sentence, position):position]


def clause_start(sentence: str, position: int) -> int:
    """Where the clause holding `position` starts: after the nearest delimiter before it,
    passing over short parentheticals and thousands commas."""
    rules = _rules()
    last_stop, delimiters = rules["last_stop"], rules["delimiters"]
    while True:
        found = last_stop.match(sentence, 0, position)
        if found is None:
            return 0
        index = found.end() - 1
        char = sentence[index]
        if char in ")）":
            opening = _short_parenthetical(sentence, index)
            if opening is not None:  # 村(居)委会, 工作站(点): part of the phrase
                position = opening
                continue
        if char in delimiters and (char != "," or not _thousands_comma(sentence, index)):
            return index + 1
        position = index


def _short_parenthetical(sentence: str, closing: int) -> int | None:
    """Index of the ( matching the ) at `closing` when what they hold is a few characters."""
    window = sentence[max(0, closing - 6):closing]
    opening = max(window.rfind("("), window.rfind("（"))
    if opening < 0 or any(c in window[opening + 1:] for c in "，,；;。"):
        return None
    return max(0, closing - 6) + opening


def _thousands_comma(sentence: str, index: int) -> bool:
    """1,050: a comma inside a number does not end a clause."""
    return (sentence[index] == "," and index > 0 and sentence[index - 1].isdigit()
            and sentence[index + 1:index + 4].isdigit())  # fmt: skip


@lru_cache(maxsize=8192)  # phrases recur across sentences and pages (总投资, 新增床位)
def clean_phrase(phrase: str) -> str:
    """Strip leading time/scope words and trailing verbs/links until nothing changes."""
    rules = _rules()
    previous = None
    while phrase != previous:
        previous = phrase
        phrase = rules["leading"].sub("", phrase.strip(" ，,"), count=1)
        phrase = rules["trailing"].sub("", phrase, count=1)
    return phrase.strip(" ，,")


def find_subject(
    sentence: str, start: int, end: int, previous_end: int = 0, previous_subject: str | None = None,
    clause_from: int | None = None,
) -> str | None:
    """The subject of the quantity at sentence[start:end] (`clause_from`: clause_start(sentence,
    start), when the caller has it already)."""
    if clause_from is None:
        clause_from = clause_start(sentence, start)
    # the clause up to the number, or from the previous quantity when it sits in this clause
    subject: str | None
    head = sentence[max(clause_from, previous_end):start]
    subject, kind = _head_subject(head)
    gap_has_text = previous_end < clause_from and _CJK.search(sentence, previous_end, clause_from) is not None
    inherited = previous_subject if previous_subject and not gap_has_text else None
    if kind == _CHANGE:  # 比上年增长7.5%, 占生产总值的比重46.2%: of the figure just given
        subject = previous_subject or _previous_clause_head(sentence, clause_from) or subject
    elif kind == _ONE_CJK:  # 惠及 → 惠: a verb of its own; only what follows can say more
        subject = phrase_after(sentence, end)
    elif kind == _NO_NOUN:
        subject = phrase_after(sentence, end) or inherited or _previous_clause_head(sentence, clause_from)
    elif kind == _NOUN_AFTER:
        subject = phrase_after(sentence, end) or subject  # 给予10万元购房补贴, 横溪镇9个移民村: the noun after
    if (subject and (kind == _PHRASE or kind == _NOUN_AFTER) and clause_from > 0 and sentence[clause_from - 1] == "、"
            and previous_end < clause_from):  # fmt: skip
        subject = _listed_nouns(sentence, clause_from) + subject  # 低保、特困对象1.2万余人: one figure, both
    max_length = _rules()["max_length"]
    if subject and len(subject) > max_length:
        subject = subject[-max_length:]
    return subject or None


_SHORT_PARENS = re.compile(r"[(（][\u4e00-\u9fff]{1,4}[)）]")  # 村(社区)儿童主任: part of the noun


def _blank_parens(match: re.Match[str]) -> str:
    return match.group()[1:-1] + "  "  # keeps offsets; the words stay, the brackets go


_PHRASE, _ONE_CJK, _NO_NOUN, _CHANGE, _NOUN_AFTER = 0, 1, 2, 3, 4
_JOINERS = ("和", "及", "与", "、", "以及")  # …督导员和356名村(社区)儿童主任: the noun follows


@lru_cache(maxsize=8192)  # phrases recur across sentences and pages (总投资, 新增床位)
def _head_subject(head: str) -> tuple[str, int]:
    """The cleaned phrase before a number, and what it is: a phrase, a single CJK character
    (a verb of its own), no noun at all (nothing CJK, or only a bare verb), only a change
    or share of something already named (比上年增长, 占…比重), or a phrase whose noun comes
    after the number (a verb taking it as object, a place, a joiner: 给予, 横溪镇, …和)."""
    if _rules()["change_head"].search(head.strip(" ，,")):
        return clean_phrase(head), _CHANGE
    subject = clean_phrase(head)
    if len(_CJK.findall(subject)) == 1:
        return subject, _ONE_CJK
    if not _CJK.search(subject) or subject in _rules()["verbs"]:
        return subject, _NO_NOUN
    if (_ends_with_object_verb(head) or _ends_with_object_verb(subject) or _rules()["place_head"].search(subject)
            or head.rstrip().endswith(_JOINERS)):  # fmt: skip
        return subject, _NOUN_AFTER
    return subject, _PHRASE


def _ends_with_object_verb(head: str) -> bool:
    """The phrase before the number ends with a verb whose object is the counted noun."""
    return _rules()["object_verb_end"].search(head.strip(" ，,")) is not None


def _listed_nouns(sentence: str, clause_from: int) -> str:
    """The nouns joined by 、 right before the clause at `clause_from`, with their 、s, when
    no number stands among them (低保、 of 低保、特困对象1.2万余人)."""
    start = clause_start(sentence, clause_from - 1)
    while start > 0 and sentence[start - 1] == "、" and not _DIGIT.search(sentence, clause_start(sentence, start - 1), start):
        start = clause_start(sentence, start - 1)
    listed = sentence[start:clause_from]
    if _DIGIT.search(listed) or len(listed) > 7:  # a list of short names only, not 通过政府门户网站、
        return ""
    return clean_phrase(listed[:-1]) + "、"


_DIGIT = re.compile(r"\d")
_DESCRIBED = re.compile(r"(?:[\u4e00-\u9fff]{1,4}、){1,5}[\u4e00-\u9fff]{1,4}的")


def phrase_after(sentence: str, end: int) -> str | None:
    """1家社区发展基金会 → 社区发展基金会 (the counted noun follows the number), up to a
    delimiter, a digit or a word that ends a noun phrase (的, 用于, 下沉 …)."""
    tail = _POST_QUALIFIER.sub("", sentence[end:end + 40])
    if "(" in tail or "（" in tail:
        tail = _SHORT_PARENS.sub(_blank_parens, tail)
    found = _rules()["phrase_stop"].search(tail)  # a delimiter or a decimal digit
    stop = found.start() if found else len(tail)
    if _NOT_CJK.search(tail, 0, stop):  # ², ① are digits to str.isdigit too: only then look closer
        stop = next((i for i, c in enumerate(tail[:stop]) if c.isdigit()), stop)
    if _rules()["after_opens_no_noun"].match(tail):
        return None  # 1200万元用于…, 3.2%的增幅: no noun follows
    if tail.startswith("的") and stop > 2:
        tail, stop = tail[1:], stop - 1  # 全市30%的国内人员: the noun after 的
    described = _DESCRIBED.match(tail)
    if described:  # 50个区域化、标准化、便捷化的“爱心食堂”: the noun after the words describing it
        tail = tail[described.end():]
        found = _rules()["phrase_stop"].search(tail)
        stop = found.start() if found else len(tail)
    ends = _rules()["after_stop"].search(tail, 1, stop)
    phrase = tail[: ends.start() if ends else stop].strip()
    return phrase if _TWO_CJK.search(phrase) is not None and not phrase.startswith(("的", "是")) else None


def _previous_clause_head(sentence: str, head_start: int) -> str | None:
    """最低生活保障标准实现与宁波"并轨"，提升至1005元/月 → 最低生活保障标准 (`head_start`: where
    the number's own clause starts)."""
    if head_start <= 1:
        return None
    previous = clause_head(sentence, head_start - 1)
    match = _rules()["head_stop"].search(previous)
    phrase = clean_phrase(previous[: match.start()] if match else previous)
    return phrase if _CJK.search(phrase) else None


@lru_cache(maxsize=64)
def _indicators_for(unit_norm: str, kind: str | None) -> tuple[re.Pattern[str] | None, list[tuple[str, re.Pattern[str]]]]:
    """The indicators whose units admit `unit_norm` and whose kinds admit `kind`, in file
    order, and one pattern that matches wherever any of them does (most quantities match
    none: one search says so)."""
    fitting = []
    for row in indicators():
        unit_norms = {u.strip() for u in row["unit_norms"].split(";") if u.strip()}
        kinds = {k.strip() for k in (row.get("kinds") or "").split(";") if k.strip()}
        if (not unit_norms or unit_norm in unit_norms) and (not kinds or kind is None or kind in kinds):
            fitting.append((row["code"], re.compile(row["pattern"])))
    if not fitting:
        return None, fitting
    try:
        any_of = re.compile("|".join(f"(?:{p.pattern})" for _, p in fitting))
    except re.error:  # a pattern with global flags cannot be joined: no shortcut, same answer
        any_of = re.compile("")
    return any_of, fitting


_COUNT_UNITS = frozenset({"person", "household", "item", "bed", "couple", "person-time", "household-time"})
# two categories joined (孤儿及事实无人抚养儿童), not a verb ending in 及 (惠及, 涉及, 普及)
_JOINED = re.compile(r"[\u4e00-\u9fff]{2,}((?<![惠涉普以危波提触企顾论推遍])及|和|与|、|或)[\u4e00-\u9fff]{2,}")
_JOINED_BY = ("及", "和", "与", "、", "或")  # the joiners _JOINED needs, one of them at least


def joins_categories(subject: str | None) -> bool:
    """孤儿及事实无人抚养儿童: two categories counted together, no one indicator's figure."""
    if not subject or not any(joiner in subject for joiner in _JOINED_BY):
        return False  # most subjects join nothing; _JOINED backtracks over every CJK run to say so
    return _JOINED.search(subject) is not None


def assign_indicator(subject: str | None, context: str, unit_norm: str, kind: str | None = None) -> str | None:
    """The first indicator of config/indicators.csv whose pattern matches and whose units
    and kinds fit: a removal (退出低保68户) or a cumulative count never feeds a stock.

    Matched on the subject; only a quantity without one falls back to the text just
    before it (`context`), which is broader and so less reliable.
    """
    if subject and unit_norm in _COUNT_UNITS and (joins_categories(subject) or subject.rstrip().endswith("”")):
        return None  # 孤儿及事实无人抚养儿童195人, “身后一件事”6602件: a pair of categories, a named item
    found = indicator_of(subject if subject else context[-30:], unit_norm, kind)
    if found is None and subject and _rules()["generic_subject"].search(subject):
        # 福利彩票投注机163台，全年销售金额2.92亿: a generic noun takes what the sentence names
        found = indicator_of(context[-40:], unit_norm, kind)
    return found


@lru_cache(maxsize=8192)  # subjects recur: the same phrase, the same answer
def indicator_of(text: str, unit_norm: str, kind: str | None = None) -> str | None:
    """The fitting indicator whose pattern matches nearest the end of the phrase (a Chinese
    noun phrase ends with its head: 社会组织公益项目 is a project, not an organisation), the
    first in file order among equals. Spaces (a blanked pinyin gloss) do not count."""
    text = "".join(text.split())
    any_of, fitting = _indicators_for(unit_norm, kind)
    if any_of is None or not any_of.search(text):
        return None
    best: tuple[int, str] | None = None
    for code, pattern in fitting:
        ends = [match.end() for match in pattern.finditer(text)]
        if ends and (best is None or max(ends) > best[0]):
            best = (max(ends), code)
    return best[1] if best else None


@lru_cache(maxsize=1)
def indicator_patterns() -> dict[str, re.Pattern[str]]:
    """code → its compiled pattern (config/indicators.csv)."""
    return {row["code"]: re.compile(row["pattern"]) for row in indicators()}
