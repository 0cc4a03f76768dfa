"""Metadata of a 政府信息公开 page: 索引号, 发布机构, dates, 文号, 分类, 公开方式 … and the title.

The page outside the body is read as lines (tasks.extract.page.element_lines), and labels are
found in them whatever the layout: "label: value" pairs, several on a line, tables of
2 or 4 columns, one label per line, <ul><li>, spaced labels (索 引 号), no colon. A label
present with an empty value (or 无) gives None and no fallback: the page says "none".
<meta> tags and looser labels (信息来源, 时间) fill only fields whose label is absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from difflib import SequenceMatcher
from functools import lru_cache

from lxml import etree

from tasks.extract.page import EMPTY_CELL, element_lines, meta_content, meta_tags, select
from tasks.extract.text import CLAUSE_END, fold, fold_lines, normalize_space, squash
from tasks.extract.vocab import metadata_rules, page_rules

FIELDS = ("index_no", "publisher", "publish_date", "written_date", "doc_number", "topic",
          "category", "disclosure_mode", "disclosure_scope", "title")  # fmt: skip


DATE_FIELDS = ("publish_date", "written_date")


@dataclass
class PageMetadata:
    values: dict[str, str | None] = field(default_factory=dict)  # field → text (None: absent or stated empty)
    dates: dict[str, date | None] = field(default_factory=dict)  # DATE_FIELDS, parsed from their text
    warnings: list[str] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        return self.values.get(name)


@lru_cache(maxsize=1)
def _label_index() -> tuple[re.Pattern[str], dict[str, tuple[str, bool]]]:
    """One regex for every label, and label → (field, is_fallback); '' field = delimiter only."""
    rules = metadata_rules()
    owners: dict[str, tuple[str, bool]] = {}
    for name, labels in rules["fields"].items():
        owners.update({label: (name, False) for label in labels})
    for name, labels in rules["fallback_fields"].items():
        owners.update({label: (name, True) for label in labels if label not in owners})
    owners.update({label: ("", False) for label in rules["other_labels"] if label not in owners})
    spaced = sorted(owners, key=len, reverse=True)
    alternatives = "|".join(r"\s*".join(map(re.escape, label)) for label in spaced)
    # A label starts a line or follows a separator; right after a code or date
    # (…/2023-00001发布机构：) it needs its colon, so 3号 or 2023年 never start one.
    pattern = re.compile(
        rf"(?:(?:^|(?<=[\s|｜:：;；,，]))(?P<label>{alternatives})\s*(?:[:：]|(?=\s)|$)"
        rf"|(?<=[0-9A-Za-z)）])(?P<glued>{alternatives})\s*[:：])"
    )
    return pattern, owners


@lru_cache(maxsize=1)
def _any_label() -> re.Pattern[str]:
    """Any label anywhere: every match of the label pattern holds one. Searched first, since it
    starts with the labels' first characters and the engine skips to those (most lines of a
    page name no label)."""
    return re.compile("|".join(r"\s*".join(map(re.escape, label))
                               for label in sorted(_label_index()[1], key=len, reverse=True)))


_MAX_LABEL_LINE = 1000  # characters; the longest row of label:value pairs is a few hundred


def find_labels(lines: list[str], titles: frozenset[str] = frozenset()) -> list[tuple[str, bool, str | None]]:
    """(field, is_fallback, value) for every label in reading order; value None when empty.

    `titles` (squashed) are lines that are never a value: an empty last label before the
    headline must not take the headline.
    """
    pattern, owners = _label_index()
    any_label = _any_label()
    found: list[tuple[str, bool, str | None]] = []
    folded_lines = fold_lines(lines)  # one pass over the text instead of one per line
    for index, line in enumerate(lines):
        if len(line) > _MAX_LABEL_LINE:  # prose, not a row of labels
            continue
        folded = folded_lines[index]
        if not any_label.search(folded):
            continue
        matches = list(pattern.finditer(folded))
        for i, match in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
            value = _clean_value(line[match.end():end])
            if value is None and i + 1 == len(matches):
                value = _next_cell_value(lines, folded_lines, index, titles)
            name, fallback = owners[squash(match.group("label") or match.group("glued"))]
            found.append((name, fallback, value))
    return found


def edge_lines(lines: list[str], prose_min: int = 40) -> list[str]:
    """The lines of a body container before its first and after its last line of prose:
    where a metadata block sits when the page puts it inside the body container."""
    prose = [i for i, line in enumerate(lines)
             if len(line) > prose_min and (len(line) > _MAX_LABEL_LINE or CLAUSE_END.search(line))]  # fmt: skip
    if not prose:
        return lines
    return lines[: prose[0]] + lines[prose[-1] + 1:]


def _next_cell_value(lines: list[str], folded_lines: list[str], index: int, titles: frozenset[str]) -> str | None:
    """Layouts with the value in the next cell or line; an empty cell there means no value,
    and so does a next line that is a label, prose or the page's title."""
    if index + 1 >= len(lines) or lines[index + 1] == EMPTY_CELL:
        return None
    following = lines[index + 1]
    if _label_index()[0].match(folded_lines[index + 1]) or len(following) > 60 or CLAUSE_END.search(following):
        return None
    if squash(following) in titles:
        return None
    return _clean_value(following)


def _clean_value(raw: str) -> str | None:
    value = normalize_space(raw.replace(EMPTY_CELL, " ")).strip(" |｜:：")
    return None if not value or value in metadata_rules()["empty_values"] else value


def extract_metadata(root: etree._Element, body: etree._Element | None = None,
                     title_selectors: tuple[str, ...] = ()) -> PageMetadata:  # fmt: skip
    metas = meta_tags(root)
    titles = _title_candidates(root, metas)
    labels = find_labels(element_lines(root, skip=body, keep_empty_cells=True), titles)
    if body is not None and not any(name == "index_no" for name, _, _ in labels):
        labels += find_labels(edge_lines(element_lines(body, keep_empty_cells=True)), titles)
    metadata = PageMetadata()
    primary: dict[str, str | None] = {}
    fallback: dict[str, str | None] = {}
    for name, is_fallback, value in labels:
        if not name:
            continue
        if not is_fallback:
            primary.setdefault(name, value)  # the first label of a field decides, even if empty
        elif fallback.get(name) is None:
            fallback[name] = value
    for name in FIELDS:
        if name in primary:
            metadata.values[name] = primary[name]
        elif fallback.get(name):
            metadata.values[name] = fallback[name]
        else:
            metadata.values[name] = meta_content(metas, metadata_rules()["meta_tags"].get(name, []))
    metadata.values["title"] = find_title(root, body, title_selectors, metadata.values.get("title"), metas)
    _normalise(metadata)
    return metadata


def _normalise(metadata: PageMetadata) -> None:
    for name in DATE_FIELDS:
        raw = metadata.values.get(name)
        parsed = parse_date(raw)
        if raw and parsed is None:
            metadata.warnings.append(f"{name}: {raw!r} is not a date")
        metadata.dates[name] = parsed
    index_no = metadata.values.get("index_no")
    if index_no:
        index_no = squash(fold(index_no))
        metadata.values["index_no"] = index_no
        if not any(re.match(p, index_no) for p in metadata_rules()["index_no_patterns"]):
            metadata.warnings.append(f"index_no {index_no!r} has an unusual shape")
    else:
        metadata.warnings.append("no 索引号 on the page")


def parse_date(raw: str | None) -> date | None:
    """2024- 05- 17 09: 06 / 2023年6月15日 / 2023.6.15 → a date; None when there is none."""
    if not raw:
        return None
    match = re.search(r"((?:19|20)\d{2})\s*[-年./]\s*(\d{1,2})\s*[-月./]\s*(\d{1,2})", fold(raw))
    if not match:
        return None
    try:
        return date(*map(int, match.groups()))
    except ValueError:
        return None


def report_years(title: str | None) -> tuple[int | None, int | None]:
    """(summary_year, plan_year) from a title: each keyword takes the nearest year before it.

    2022年度工作总结及2023年工作计划 → (2022, 2023); 2023年上半年工作总结和下半年打算 → (2023, 2023).
    """
    if not title:
        return None, None
    folded = fold(title)
    years = [(m.start(), int(m.group(1))) for m in _TITLE_YEAR.finditer(folded)]
    if not years:
        return None, None
    found: dict[str, int] = {}
    for kind, words in metadata_rules()["title_years"].items():
        # the first keyword after the first year (one before every year has none to take)
        hits = [hit for word in words if (hit := folded.find(word, years[0][0] + 1)) >= 0]
        if hits:
            position = min(hits)
            found[kind] = [year for year_pos, year in years if year_pos < position][-1]
    return found.get("summary"), found.get("plan")


_TITLE_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")


# --- the title ---------------------------------------------------------------------------------
def find_title(root: etree._Element, body: etree._Element | None,
               title_selectors: tuple[str, ...], labelled: str | None,
               metas: dict[str, str] | None = None) -> str | None:  # fmt: skip
    """The source's title selector, else the 名称 label, else the heading most like <title>
    (`metas`: meta_tags(root), when the caller has them already)."""
    for css in title_selectors:
        for element in select(root, css):
            text = _element_title(element)
            if text:
                return text
    if labelled:
        return labelled
    metas = meta_tags(root) if metas is None else metas
    reference = meta_content(metas, metadata_rules()["meta_tags"]["title"]) or _document_title(root)
    best, best_score = None, 0.0
    for css in page_rules()["title_selectors"]:
        for element in select(root, css):
            if body is not None and (element is body or body in element.iterancestors()):
                continue
            text = _element_title(element)
            score = _title_score(text, reference)
            if score > best_score:
                best, best_score = text, score
    return best or reference


def _title_candidates(root: etree._Element, metas: dict[str, str]) -> frozenset[str]:
    """The page's title as <meta> and <title> state it, squashed: never a label's value."""
    found = {meta_content(metas, metadata_rules()["meta_tags"]["title"]), _document_title(root)}
    return frozenset(squash(t) for t in found if t)


def _element_title(element: etree._Element) -> str | None:
    """Lines joined without a space: a title broken by <br> is one Chinese phrase."""
    text = "".join(element_lines(element)).strip()
    return text if 4 <= len(text) <= 200 else None


def _document_title(root: etree._Element) -> str | None:
    """<title>, less the site name: the longest part split on _ | - —."""
    element = root.find(".//title")
    if element is None or not (element.text or "").strip():
        return None
    parts = [p.strip() for p in re.split(r"\s*[_|｜—–-]{1,2}\s*", element.text.strip()) if p.strip()]
    return max(parts, key=len) if parts else None


def _title_score(text: str | None, reference: str | None) -> float:
    if not text:
        return 0.0
    if not reference:
        return 0.1 * min(len(text), 40)
    a, b = squash(text), squash(reference)
    if a == b:
        return 1000.0 + len(a)
    return SequenceMatcher(None, a, b).ratio() * len(a)
