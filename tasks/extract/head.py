"""The edges of a body: the headline block on top, the signature block at the end.

Many pages print, inside the body container and before the text, a headline block: the
title (sometimes twice, sometimes letter-spaced: 政 府 工 作 报 告), a delivery note
(——2023年2月2日在…会议上), the speaker (县长 陈永高), the issuer (子洲县统计局), a date
or timestamp line, 来源/点击 lines. `split_head` cuts it off the body and keeps it, since
it says what the page's labels may not: the title, the publish date, the issuer.
`read_signature` reads the issuing office and date a letter ends with (the lines stay in
the body). Patterns are data in config/page.yaml (`headline`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from tasks.extract.text import fold, parse_chinese_numeral, squash
from tasks.extract.vocab import metadata_rules, page_rules

_SENTENCE = re.compile(r"[。；;！？!?]")


@dataclass
class Head:
    lines: list[str]  # the headline block, as cut off the body
    title: str | None = None  # the first line that reads as the document's title
    issuer: str | None = None  # an org line under the title (a bulletin's 子洲县统计局)
    date_line: str | None = None  # the first dated line (delivery note, timestamp, 稿源 … date)
    signed: date | None = None  # an org line followed by a date line: the signature printed on top
    index_no: str | None = None  # a bare value of the 索引号's shape
    doc_number: str | None = None  # a 文号 on its own line (粤办函〔2023〕305号)


@dataclass
class Signature:
    org: str | None
    signed: date | None


@lru_cache(maxsize=1)
def _rules() -> dict:
    rules = page_rules()["headline"]
    return {
        "scan": int(rules["scan_lines"]),
        "max_line": int(rules["max_line"]),
        "strong": re.compile("|".join(f"(?:{p})" for p in rules["strong_patterns"])),
        "title": re.compile(rules["title_pattern"]),
        "title_suffix": re.compile(rules["title_strip_suffix"]),
        "salutation": re.compile(rules["salutation_pattern"]),
        "date_label": re.compile(rules["date_label_pattern"]),
        "title_before_note": re.compile(rules["title_before_note_pattern"]),
        "note": re.compile(r"(会议|大会)上"),
        "org": re.compile(page_rules()["signature_org_pattern"]),
        "date": re.compile(page_rules()["signature_date_pattern"]),
        "dated": re.compile(r"((?:19|20)\d{2})\s*[-年./]\s*(\d{1,2})\s*[-月./]\s*(\d{1,2})"
                            r"|([〇○零一二][〇○零一二三四五六七八九]{3})年([一二三四五六七八九十]{1,2})月([一二三四五六七八九十]{1,3})日"),
    }


def is_strong_head_line(line: str, folded: str | None = None) -> bool:
    """A line that only a headline block holds: a delivery note, a speaker or byline, a
    bare date or timestamp, a 来源/稿源 line, a junk line of marks."""
    text = squash(fold(line) if folded is None else folded)
    return bool(text) and (len(line) <= _rules()["max_line"]) and _rules()["strong"].search(text) is not None


def is_title_line(line: str) -> bool:
    """A short line, no sentence in it, naming a document genre at its end (…工作报告,
    …统计公报, …的通知, 政 府 工 作 报 告)."""
    text = squash(fold(line))
    return len(text) <= _rules()["max_line"] and not _SENTENCE.search(text) and bool(_rules()["title"].search(text))


def is_salutation(line: str) -> bool:
    """各位代表：/ 各区市县人民政府，市政府各部门：: the first line of a letter's text."""
    return bool(_rules()["salutation"].match(squash(fold(line))))


def _weak(line: str) -> bool:
    """Short, no sentence: may belong to a headline block (a title, a subtitle, an org)."""
    return len(line) <= _rules()["max_line"] and not _SENTENCE.search(line)


def split_head(lines: list[str], opens_text: Callable[[str], bool],
               title: str | None = None) -> tuple[Head, list[str]]:  # fmt: skip
    """(the headline block, the rest) of a body's lines.

    Within the first `scan_lines` lines, up to the first line that opens the text (prose,
    a salutation, or what `opens_text(line)` says is an outline heading), the block runs
    through its last strong line or title line. A title line is one naming a document
    genre (…工作报告): with the page's `title` known, only one like it (an unnumbered part
    heading such as 2022年工作总结 reads like a title too); with none, the first one.
    Weak lines after the block (a subtitle, an org) stay in the body.
    """
    cut, titled = 0, False
    known = squash(fold(title)) if title else None
    for i, line in enumerate(lines[: _rules()["scan"]]):
        if opens_text(line) or is_salutation(line):
            break
        if is_strong_head_line(line) or is_index_no(line) or is_doc_number(line):
            cut = max(cut, i + 1)
        elif not _weak(line):
            break
        elif known and i + 1 < len(lines) and _like(line + lines[i + 1], known) and not _like(line, known):
            cut, titled = i + 2, True  # the known title broken over two lines
        elif is_title_line(line) and (_like(line, known) if known else not titled or cut == i):
            cut, titled = max(cut, i + 1), True
    if cut and cut < len(lines) - 1 and _is_org(squash(fold(lines[cut]))):
        cut += 1  # the issuer printed under the block (沙洋县财政局 / 各位代表：)
    if cut == 0 or cut >= len(lines):
        return Head([]), lines
    return read_head(lines[:cut]), lines[cut:]


def _like(line: str, known: str) -> bool:
    """The known title, or most of it (a title broken over lines): not a part heading that
    only shares a few words with it (2023年工作总结 under …2023年工作总结及2024年工作计划)."""
    text = squash(fold(line))
    return bool(text) and (known in text or (text in known and len(text) >= 0.8 * len(known)))


def is_doc_number(line: str) -> bool:
    """A document number on its own line (粤办函〔2023〕305号), printed under a title."""
    return bool(_DOC_NUMBER.fullmatch(squash(fold(line))))


_DOC_NUMBER = re.compile(r"[\u4e00-\u9fff]{1,14}[〔\[（(【]\s*(19|20)\d{2}\s*[〕\]）)】]\s*第?\d{1,5}号")


def is_index_no(line: str) -> bool:
    """A bare value of the 索引号's shape (a metadata block whose labels were images)."""
    text = squash(fold(line))
    if _rules()["date"].match(text):
        return False  # 2024-01-05 has the shape of a code too
    return any(pattern.match(text) for pattern in _index_patterns())


@lru_cache(maxsize=1)
def _index_patterns() -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in metadata_rules()["index_no_patterns"])


def read_head(lines: list[str]) -> Head:
    head = Head(lines)
    strong = [is_strong_head_line(line) or is_index_no(line) or is_doc_number(line) for line in lines]
    titles = [i for i, (line, is_strong) in enumerate(zip(lines, strong)) if not is_strong and is_title_line(line)]
    noted = next((found for line in lines if (found := _rules()["title_before_note"].match(squash(fold(line))))), None)
    merged = -1  # an org line printed as the first part of the title
    if not strong[0] and _headline(lines[0]):
        head.title = clean_title(lines[0])  # the block's first line: the headline
    elif titles:
        at = titles[0]
        if at and _is_org(squash(fold(lines[at - 1]))) and not squash(fold(lines[at])).startswith(squash(fold(lines[at - 1]))):
            merged = at - 1  # 忠县民政局 / 2025年政府信息公开工作年度报告
        head.title = clean_title("".join(line.strip() for line in lines[merged if merged >= 0 else at:at + 1]))
    elif noted:
        head.title = clean_title(noted.group(1))  # 政府工作报告 ——二○二二年一月二十一日在…会议上
    # a dated line naming its date (来源, 发布时间) first, then a bare timestamp, then the
    # date of a delivery note (——2023年2月2日在…会议上)
    dated = [line for line in lines if _rules()["dated"].search(squash(fold(line)))]
    labelled = [line for line in dated if _rules()["date_label"].search(fold(line))]
    notes = [line for line in dated if _rules()["note"].search(squash(fold(line)))]
    bare = [line for line in dated if line not in notes]
    head.date_line = next(iter(labelled or bare or notes), None)
    head.index_no = next((squash(fold(line)) for line in lines if is_index_no(line)), None)
    head.doc_number = next((squash(fold(line)) for line in lines if is_doc_number(line)), None)
    title_at = titles[0] if titles else 0
    for i, line in enumerate(lines):
        if i == 0 or i == merged or not _is_org(squash(fold(line))) or is_title_line(line):
            continue
        head.issuer = line.strip()
        following = squash(fold(lines[i + 1])) if i + 1 < len(lines) else ""
        if i > title_at and _rules()["date"].match(following):
            head.signed = parse_any_date(following)  # a signature printed under the title
        break
    return head


def _headline(line: str) -> bool:
    """A headline: weak, long enough, not an org, a date or a list of labels' values."""
    text = squash(fold(line))
    return (_weak(line) and len(text) >= 6 and not _is_org(text) and not _rules()["dated"].search(text)
            and not is_strong_head_line(line))


def clean_title(line: str) -> str:
    """The line as a title: spaces inside a letter-spaced title out, a repost's (全文) off."""
    text = line.strip()
    if re.fullmatch(r"(?:[\u4e00-\u9fff]\s+){2,}[\u4e00-\u9fff]", text):
        text = squash(text)  # 政 府 工 作 报 告
    return _rules()["title_suffix"].sub("", text).strip()


def parse_any_date(text: str | None) -> date | None:
    """2023年2月2日, 2023-02-02, 2023/2/2 or 二○二二年一月二十一日 → a date."""
    folded = fold(text or "")
    found = _rules()["dated"].search(folded) or _rules()["dated"].search(squash(folded))  # 2023/8/7 23:36, 二○二二 年…
    if not found:
        return None
    if found.group(1):
        year, month, day = (int(found.group(n)) for n in (1, 2, 3))
    else:
        year = int("".join(str(_CN_YEAR_DIGITS[c]) for c in found.group(4)))
        cn_month, cn_day = parse_chinese_numeral(found.group(5)), parse_chinese_numeral(found.group(6))
        if cn_month is None or cn_day is None:
            return None
        month, day = cn_month, cn_day
    try:
        return date(year, month, day)
    except ValueError:
        return None


_CN_YEAR_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "○": 0}


def read_signature(paragraphs: list[str], folded: list[str] | None = None) -> Signature:
    """The issuing office(s) and date that close a letter: short lines of org names (several
    on a line when bodies sign jointly), then a date; or both on one line. The first such
    block of the body counts (a cover letter signs before its 附件), its first signer is the
    publisher. The lines stay in the body. `folded`: fold() of each paragraph, when the
    caller has them."""
    for i, paragraph in enumerate(paragraphs):
        squashed = squash(fold(paragraph) if folded is None else folded[i])
        if len(squashed) > 60 or not (_YEAR.search(squashed) or _rules()["dated"].search(squashed)):
            continue
        if _rules()["date"].match(squashed):
            orgs = _orgs_above(paragraphs, i)
            if orgs and _closes_text(paragraphs, i - len(orgs_lines(paragraphs, i)), i):
                return Signature(orgs[0], parse_any_date(squashed))
            continue
        year = _YEAR.search(squashed)
        if year and year.start() and _is_org(squashed[: year.start()]) and _rules()["date"].match(squashed[year.start():]):
            return Signature(squashed[: year.start()], parse_any_date(squashed[year.start():]))
    return Signature(None, None)


def orgs_lines(paragraphs: list[str], at: int) -> list[str]:
    """The short lines of org names right above line `at` (up to 4), in reading order."""
    lines: list[str] = []
    for line in reversed(paragraphs[max(0, at - 4):at]):
        names = line.split()
        if not names or len(squash(line)) > 60 or not all(_is_org(squash(fold(n))) for n in names):
            break
        lines.insert(0, line)
    return lines


def _orgs_above(paragraphs: list[str], at: int) -> list[str]:
    return [name.strip() for line in orgs_lines(paragraphs, at) for name in line.split()]


def _closes_text(paragraphs: list[str], start: int, date_at: int) -> bool:
    """A signature follows the text it signs (a sentence ends right above it) or ends the
    body; org and date cells of a table do neither."""
    above = squash(fold(paragraphs[start - 1])) if start > 0 else ""
    return above.endswith(("。", "!", "！", ";", "；", ":", "：")) or date_at >= len(paragraphs) - 2


def _is_org(text: str) -> bool:
    return bool(_rules()["org"].match(text))


_YEAR = re.compile(r"((?:19|20)\d{2}|[〇○零一二][〇○零一二三四五六七八九]{3})年")
