"""Rankings such as 排名全市第一, 市排名第二, 列宁波第一: their own table, not metrics.

A rank needs a ranking verb (排名/位居/居/列) or a scope (全市, 宁波) right before 第N, and
N must not be followed by a counter that makes it an ordinal (第一批, 第二次, 第一责任人).
"""

from __future__ import annotations

import re
from functools import lru_cache

from tasks.extract.metrics import iter_sentences
from tasks.extract.outline import Outline
from tasks.records import Rank
from tasks.extract.subjects import clause_head, clean_phrase
from tasks.extract.text import parse_chinese_numeral
from tasks.extract.vocab import metric_rules


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    rules = metric_rules()["ranks"]
    verbs = "|".join(sorted(rules["verbs"], key=len, reverse=True))
    stop = "|".join(sorted(rules["not_followed_by"], key=len, reverse=True))
    whole = "|".join(rules["scopes_whole"])
    return re.compile(
        rf"(?:(?P<pre>[市省县区])?(?P<verb>{verbs})(?P<tied>并列)?"
        rf"(?P<scope>{whole}|[\u4e00-\u9fff]{{2,3}}?(?:市|省)?)?|(?P<whole>{whole}))"
        rf"第(?P<n>[一二三四五六七八九十]+|\d+)(?:名|位)?(?!{stop})"
    )


def extract_ranks(outline: Outline, index_no: str | None = None,
                  sentences: list[tuple[int, int]] | None = None) -> list[Rank]:  # fmt: skip
    """`sentences`: iter_sentences(outline.folded_text), when the caller has them already."""
    ranks: list[Rank] = []
    folded_body = outline.folded_text
    for start, end in iter_sentences(folded_body) if sentences is None else sentences:
        folded = folded_body[start:end]
        if "第" not in folded:
            continue
        sentence = outline.body_text[start:end]
        for match in _pattern().finditer(folded):
            rank = _rank(folded, sentence, match, outline.section_at(start + match.start()), index_no, len(ranks))
            if rank:
                ranks.append(rank)
    return ranks


def _rank(folded: str, sentence: str, match: re.Match[str], section_id, index_no, ordinal) -> Rank | None:
    verb, pre = match.group("verb"), match.group("pre")
    scope = match.group("scope") or match.group("whole")
    n = match.group("n")
    value = int(n) if n.isdigit() else parse_chinese_numeral(n)
    if not value:
        return None
    start = match.start("verb") if verb else match.start("whole")
    return Rank(
        index_no=index_no,
        section_id=section_id,
        ordinal=ordinal,
        rank=value,
        scope=normalise_scope(scope, pre) or scope_before(folded, start),
        subject=rank_subject(folded, start),
        tied=bool(match.group("tied")) or "并列" in (verb or ""),
        text=sentence[match.start():match.end()],
        sentence=sentence.strip(),
    )


def rank_subject(folded: str, start: int) -> str | None:
    """完成率145.45%，市排名第二 → 完成率: the clause's topic, or the previous clause's."""
    position = start
    for _ in range(2):
        head = clause_head(folded, position)
        phrase = clean_phrase(re.sub(r"中$", "", _TRAILING_QUANTITY.sub("", head)))  # 在…考核中
        if re.search(r"[\u4e00-\u9fff]{2}", phrase):
            return phrase
        position -= len(head) + 1
        if position <= 0:
            break
    return None


_TRAILING_QUANTITY = re.compile(r"[\d.]+\s*[^\d\s，,；;]{0,3}$")


def scope_before(folded: str, start: int) -> str | None:
    """在全省民政工作考核中位列第二 → 全省: a whole-area scope earlier in the clause."""
    whole = metric_rules()["ranks"]["scopes_whole"]
    found = re.findall("|".join(whole), clause_head(folded, start))
    return found[-1] if found else None


def normalise_scope(scope: str | None, pre: str | None) -> str | None:
    """市排名第二 → 全市; 列宁波第一 → 宁波市; 全省 stays."""
    rules = metric_rules()["ranks"]
    if scope:
        if scope.startswith("全") or scope.endswith(("市", "省", "县", "区")):
            return scope
        return scope + "市"
    return rules["scope_abbreviations"].get(pre) if pre else None
