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

from tasks.extract.head import Head, Signature, parse_any_date
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
    # field → where its value came from: label | fallback (a looser label: 来源) | meta | head | signature
    provenance: dict[str, str] = field(default_factory=dict)
    canonical_url: str | None = None  # <link rel="canonical"> or <meta name="Url">, as written

    def get(self, name: str) -> str | None:
        return self.values.get(name)


@lru_cache(maxsize=1)
def _label_index() -> tuple[re.Pattern[str], dict[str, tuple[str, bool, int]]]:
    """One regex for every label, and label → (field, is_fallback, rank); '' field = delimiter
    only. The rank is the label's place in its field's list: 发布日期 outranks 公开日期."""
    rules = metadata_rules()
    owners: dict[str, tuple[str, bool, int]] = {}
    for name, labels in rules["fields"].items():
        owners.update({label: (name, False, rank) for rank, label in enumerate(labels)})
    for name, labels in rules["fallback_fields"].items():
        owners.update({label: (name, True, rank) for rank, label in enumerate(labels) if label not in owners})
    owners.update({label: ("", False, 0) for label in (*rules["other_labels"], *rules["value_stops"])
                   if label not in owners})  # fmt: skip
    spaced = sorted(owners, key=len, reverse=True)
    alternatives = "|".join(r"\s*".join(map(re.escape, label)) for label in spaced)
    # A label starts a line or follows a separator; right after a code or date
    # (…/2023-00001发布机构：) it needs its colon, so 3号 or 2023年 never start one.
    # A label in brackets ([成文日期] 2023-05-21, 【来源】) counts, its closing bracket as colon.
    pattern = re.compile(
        rf"(?:(?:^|(?<=[\s|｜:：;；,，\[【]))(?P<label>{alternatives})\s*(?:[:：\]】]|(?=\s)|$)"
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


def find_labels(lines: list[str], titles: frozenset[str] = frozenset()) -> list[tuple[str, bool, str | None, int]]:
    """(field, is_fallback, value, rank) for every label in reading order; value None when empty.

    `titles` (squashed) are lines that are never a value: an empty last label before the
    headline must not take the headline.
    """
    pattern, owners = _label_index()
    any_label = _any_label()
    found: list[tuple[str, bool, str | None, int]] = []
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
            name, fallback, rank = owners[squash(match.group("label") or match.group("glued"))]
            found.append((name, fallback, value, rank))
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
    value = normalize_space(raw.replace(EMPTY_CELL, " ")).strip(" |｜:：[【")
    return None if not value or value in metadata_rules()["empty_values"] else value


# a date and a 来源 label on one short line, either way round
_DATELINE = re.compile(r"^.{0,20}((19|20)\d{2}\s*[-年./]\s*\d{1,2}\s*[-月./]\s*\d{1,2}).{0,24}(来源|稿源)\s*[:：]|"
                       r"(来源|稿源)\s*[:：].{0,30}((19|20)\d{2}\s*[-年./]\s*\d{1,2}\s*[-月./]\s*\d{1,2})")
_GLUED_DATE = re.compile(r"^(?:(?:19|20)\d{6}|(?:19|20)\d{2}[-./]\d{1,2}[-./]\d{1,2})\s*(?=\D)|\s+(?:19|20)\d{2}[-./]\d{1,2}[-./]\d{1,2}(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?$")


def _clean_name(value: str | None) -> str | None:
    """A publisher or source name without a date glued before or after it
    (来源：20200325四川日报, 稿源：浑南区政府网 2022-01-19)."""
    if not value:
        return value
    return _GLUED_DATE.sub("", value).strip() or value


def extract_metadata(root: etree._Element, body: etree._Element | None = None,
                     title_selectors: tuple[str, ...] = ()) -> PageMetadata:  # fmt: skip
    metas = meta_tags(root)
    titles = _title_candidates(root, metas)
    page_lines = element_lines(root, skip=body, keep_empty_cells=True)
    labels = find_labels(page_lines, titles)
    if body is not None and not any(name == "index_no" for name, *_ in labels):
        labels += find_labels(edge_lines(element_lines(body, keep_empty_cells=True)), titles)
    metadata = PageMetadata()
    primary: dict[str, tuple[int, str | None]] = {}
    fallback: dict[str, tuple[int, str | None]] = {}
    for name, is_fallback, value, rank in labels:
        if not name:
            continue
        if not is_fallback:
            # the best-ranked label of a field with a value decides, among equals the first; a
            # field whose labels are all empty is None, and no looser label fills it
            held = primary.get(name)
            if held is None or (value is not None and (held[1] is None or rank < held[0])):
                primary[name] = (rank, value)
        elif value is not None and (name not in fallback or rank < fallback[name][0]):
            fallback[name] = (rank, value)
    for name in FIELDS:
        if name in primary:
            metadata.values[name], metadata.provenance[name] = primary[name][1], "label"
        elif name in fallback:
            metadata.values[name], metadata.provenance[name] = fallback[name][1], "fallback"
        else:
            metadata.values[name] = meta_content(metas, metadata_rules()["meta_tags"].get(name, []))
            metadata.provenance[name] = "meta"
    metadata.values["title"] = clean_document_title(
        find_title(root, body, title_selectors, metadata.values.get("title"), metas), site_names(metas))
    if metadata.values.get("publish_date") is None and "publish_date" not in primary:
        dateline = next((line for line in page_lines if _DATELINE.search(fold(line))), None)
        if dateline is not None:  # 2005年08月16日 来源：新华网: a news dateline beside its source
            metadata.values["publish_date"], metadata.provenance["publish_date"] = dateline, "dateline"
    metadata.canonical_url = canonical_link(root, metas)
    metadata.values["publisher"] = _clean_name(metadata.values.get("publisher"))
    if metadata.provenance.get("publisher") in ("fallback", "meta") and _is_site_name(
            metadata.values.get("publisher") or "", site_names(metas)):  # fmt: skip
        metadata.values["publisher"] = None  # the site that carried the page, not who issued it
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

    2022年度工作总结及2023年工作计划 → (2022, 2023); 2023年上半年工作总结和下半年打算 → (2023, 2023);
    2023年政府工作报告 → (2022, 2023); …的通知 → (None, None).
    """
    if not title:
        return None, None
    rules = _year_rules()
    folded = squash(fold(title))
    if rules["no_years"].search(folded):
        return None, None
    years = [(m.start(), _year_value(m.group(1))) for m in _TITLE_YEAR.finditer(folded)]
    if not years:
        return None, None
    for genre, offsets in rules["genres"].items():
        if genre in folded and len({year for _, year in years}) == 1:
            year = years[0][1]
            return year + offsets.get("summary", 0), year + offsets.get("plan", 0)
    found: dict[str, int] = {}
    for match in rules["keywords"].finditer(folded, years[0][0] + 1):
        kind = rules["kinds"][match.group()]
        if kind not in found:
            found[kind] = [year for position, year in years if position < match.start()][-1]
    return found.get("summary"), found.get("plan")


@lru_cache(maxsize=1)
def _year_rules() -> dict:
    rules = metadata_rules()["title_years"]
    kinds = {word: kind for kind in ("summary", "plan") for word in rules[kind]}
    return {
        "kinds": kinds,
        # longest first: at one position the longer keyword (计划执行情况) wins over 计划
        "keywords": re.compile("|".join(map(re.escape, sorted(kinds, key=len, reverse=True)))),
        "genres": rules.get("genre_offsets") or {},
        "no_years": re.compile("(" + "|".join(map(re.escape, rules["no_years_after"])) + r")[)）》”]*$"),
    }


def _year_value(text: str) -> int:
    return int(text) if text.isdigit() else int("".join(str(_CN_YEAR_DIGITS[c]) for c in text))


_CN_YEAR_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "○": 0}
_TITLE_YEAR = re.compile(r"((?:19|20)\d{2}|[〇○零一二][〇○零一二三四五六七八九]{3})\s*年")


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


def clean_document_title(title: str | None, sites: frozenset[str] = frozenset()) -> str | None:
    """The document's title without a status mark ([已废止]) or the site's name joined to it
    (高阳县人民政府网站——高阳县人民政府关于…的意见)."""
    if not title:
        return title
    title = _STATUS_MARK.sub("", title).strip()
    parts = [p for p in _TITLE_SEPARATOR.split(title) if p.strip()]
    if len(parts) > 1:
        kept = [p for p in parts if not _is_site_name(p, sites)]
        if kept and len(kept) < len(parts):
            title = "——".join(p.strip() for p in kept)
    return title or None


def canonical_link(root: etree._Element, metas: dict[str, str]) -> str | None:
    """The address the page gives itself: <link rel="canonical">, else <meta name="Url">."""
    for link in root.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and (link.get("href") or "").strip():
            return (link.get("href") or "").strip()
    return meta_content(metas, metadata_rules()["meta_tags"].get("canonical_url", []))


def site_names(metas: dict[str, str]) -> frozenset[str]:
    """The site's own names, from <meta name="SiteName"> (首都之窗_北京市人民政府门户网站: each part)."""
    names = meta_content(metas, metadata_rules()["meta_tags"].get("site_name", []))
    return frozenset(squash(p) for p in _TITLE_SEPARATOR.split(names or "") if p.strip())


def _is_site_name(part: str, sites: frozenset[str]) -> bool:
    text = squash(part)
    return text in sites or bool(_SITE_NAME.search(text))


_STATUS_MARK = re.compile(r"^\s*[\[【(（]\s*(已废止|已失效|失效|废止|已修改|已修订|有效|现行有效)\s*[\]】)）]\s*")
_TITLE_SEPARATOR = re.compile(r"\s*(?:——|_|\||｜)\s*")
_SITE_NAME = re.compile(r"(网站|门户|门户网|政府网|官网|之窗)$")


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


# --- what the labels leave open --------------------------------------------------------------
def complete_from_edges(metadata: PageMetadata, head: Head, signature: Signature) -> None:
    """Fill what no label gave from the body's edges: the title, issuer and date printed
    in the headline block, and the signature a letter ends with.

    Publisher: a labelled 发布机构 / 发文机关 first, then the signature's office, then an
    issuer printed under the title, then 来源 (the site or newspaper that carried it).
    Publish date: labels, then a bare date in the headline block. Written date: 成文日期,
    then the signature's date (or one printed on top of the text).
    """
    values, provenance = metadata.values, metadata.provenance
    if provenance.get("index_no") != "label" and not values.get("index_no") and head.index_no:
        values["index_no"], provenance["index_no"] = head.index_no, "head"
        metadata.warnings = [w for w in metadata.warnings if w != "no 索引号 on the page"]
    if provenance.get("doc_number") != "label" and not values.get("doc_number") and head.doc_number:
        values["doc_number"], provenance["doc_number"] = head.doc_number, "head"
    if not values.get("title") and head.title:
        values["title"], provenance["title"] = head.title, "head"
    if provenance.get("publisher") != "label":
        issuer = signature.org or head.issuer
        if issuer:
            values["publisher"], provenance["publisher"] = issuer, "signature" if signature.org else "head"
    if provenance.get("publish_date") not in ("label", "fallback") or metadata.dates.get("publish_date") is None:
        dated = parse_any_date(head.date_line)
        if dated is not None and provenance.get("publish_date") != "label":
            metadata.dates["publish_date"], provenance["publish_date"] = dated, "head"
            values["publish_date"] = head.date_line
    if metadata.dates.get("written_date") is None and provenance.get("written_date") != "label":
        signed = signature.signed or head.signed
        if signed is not None:
            metadata.dates["written_date"], provenance["written_date"] = signed, "signature"
