"""Small text utilities shared by the extractors: folding, spaces, numerals.

Extractors match on a *folded* copy of the text (full-width ASCII → ASCII, odd
spaces → space, a few traditional characters → simplified) that has exactly the
same length as the original, so an offset found in the folded copy slices the
original text the page shows. That is why folding is 1:1 per character and not
Unicode NFKC (which turns ㎡ into "m2" and ① into "1").
"""

from __future__ import annotations

import re
from functools import lru_cache

from tasks.extract.vocab import metric_rules

_SPACES = "\u00a0\u2002\u2003\u2009\u200a\u3000\u202f\u205f"
_ZERO_WIDTH = "\u200b\u200c\u200d\ufeff"


@lru_cache(maxsize=1)
def _fold_table() -> dict[int, str]:
    table = {code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)}
    table.update({ord(c): " " for c in _SPACES})
    table.update({ord(c): " " for c in _ZERO_WIDTH})
    table.update({ord("﹪"): "%", ord("∶"): ":"})
    table.update({ord(src): dst for src, dst in metric_rules()["char_folds"].items()})
    return table


@lru_cache(maxsize=1)
def _fold_pattern() -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(chr(code)) for code in _fold_table()) + "]")


def fold(text: str) -> str:
    """Width- and variant-fold `text` without changing its length; pinyin glosses a page
    prints after characters (統(tǒng)計(jì)) become spaces, so 統計 still reads as a word."""
    # str.translate looks every character up (slow on CJK text) and a substitution calls back
    # for each folded one (every ，); replacing each distinct folded character once, found by a
    # search that resumes where the last one was (folding keeps every offset), is faster
    pattern = _fold_pattern()
    found = pattern.search(text)
    if found is not None:
        table = _fold_table()
        while found is not None:
            char = found.group()
            text = text.replace(char, table[ord(char)])
            found = pattern.search(text, found.start() + 1)
    if "(" in text and PINYIN_GLOSS.search(text) is not None:
        text = PINYIN_GLOSS.sub(_blank, text)
    return text


# a pinyin reading in brackets right after a Chinese character: 國(guó) 經(jīng). The character
# is checked by a lookbehind after the "(", so that the pattern starts with a literal the
# regex engine can skip to (a lookbehind first is tried at every position: 20× slower)
PINYIN_GLOSS = re.compile("\\((?<=[\u4e00-\u9fff]\\()[a-z\u00e0-\u00fc\u0101-\u01dc]{2,6}\\)")


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group())


def fold_lines(lines: list[str]) -> list[str]:
    """fold() of each line, in one pass over their text (folding never adds or removes a line
    break; lines that hold one, or no lines, are folded one by one)."""
    folded = fold("\n".join(lines)).split("\n")
    return folded if len(folded) == len(lines) else [fold(line) for line in lines]


# \s covers NBSP and the full-width space. Written [c][c]* rather than [c]+: a pattern that
# starts with a character class lets the regex engine skip to its first character.
_WHITESPACE = re.compile(r"[\s" + _ZERO_WIDTH + r"][\s" + _ZERO_WIDTH + "]*")


def squash(text: str) -> str:
    """`text` with every whitespace character out, the full-width space included (str.split
    splits on exactly what the regex class for whitespace matches)."""
    return "".join(text.split())


# A clause or sentence ends in the line: prose, not a label, cover or value cell.
CLAUSE_END = re.compile(r"[。；;]")


def normalize_space(text: str) -> str:
    """Collapse runs of whitespace (including full-width, NBSP and zero-width) to one space, strip."""
    # str.split() splits on exactly what \s matches (str.isspace); only the zero-width
    # characters, which are not whitespace to Python, need the regex (four substring
    # searches are faster than one character-class search)
    for char in _ZERO_WIDTH:
        if char in text:
            return _WHITESPACE.sub(" ", text).strip()
    return " ".join(text.split())


_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
CN_NUMERAL_CHARS = "零〇一二两三四五六七八九十百千"


def parse_chinese_numeral(text: str) -> int | None:
    """一 → 1, 十一 → 11, 二十三 → 23, 一百零五 → 105; None if `text` is not a numeral."""
    if not text or any(c not in _CN_DIGITS and c not in _CN_UNITS for c in text):
        return None
    total, digit = 0, None
    for char in text:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
            continue
        total += (1 if digit is None else digit) * _CN_UNITS[char]
        digit = None
    return total + (digit or 0)


@lru_cache(maxsize=1024)  # labels are a handful of short tokens (一, 二, 12, ③) that every page repeats
def parse_label_number(label: str) -> int | None:
    """The integer behind an outline label: 一 → 1, 12 → 12, ③ → 3."""
    if label.isascii() and label.isdigit():  # "①".isdigit() is True too
        return int(label)
    if len(label) == 1 and "①" <= label <= "⑳":
        return ord(label) - ord("①") + 1
    return parse_chinese_numeral(label)
