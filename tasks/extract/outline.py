"""The section outline of a report body: 一、 / (一) / 1. / (1) / ① / inline 一是…

`parse_outline(paragraphs, ...)` works on the cleaned body paragraphs and returns the
sections (parent links, levels, labels, headings, kinds, years) and, for every
character of the body text ("\n".join(paragraphs)), the section that owns it, so a
quantity found anywhere in the text can be placed in the outline.

General by construction: marker patterns and keyword lists are data
(config/outline.yaml); headings are recognised only at the start of a paragraph and
only when their number continues the sequence of their level, which keeps a stray
"3." or "一、二级残疾人" out of the outline. Levels are fixed by marker type, so a
skipped level (1. right under 一、) keeps level 3.
"""

from __future__ import annotations

import bisect
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from tasks.records import Section
from tasks.extract.text import fold, parse_label_number
from tasks.extract.vocab import metadata_rules, outline_rules, units


@dataclass(eq=False)
class _Node:
    level: int
    label: str | None = None
    number: int | None = None
    heading: str | None = None
    text_start: int = 0  # offset in body_text where the node's own text starts
    pending: tuple[int, int] | None = None  # (start, end) of a fused heading still to cut
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # owned body_text ranges


@dataclass
class Outline:
    sections: list[Section]
    body_text: str
    warnings: list[str]
    starts: list[int]  # sorted span starts ...
    owners: list[str]  # ... and the section_id owning each span
    folded_text: str = ""  # fold(body_text), computed once for every later stage

    def __post_init__(self) -> None:
        self.folded_text = self.folded_text or fold(self.body_text)

    def section_at(self, offset: int) -> str | None:
        """The section_id owning character `offset` of body_text."""
        i = bisect.bisect_right(self.starts, offset) - 1
        return self.owners[i] if i >= 0 else None


@lru_cache(maxsize=1)
def _rules() -> dict:
    rules = outline_rules()
    return {
        "markers": [(m["level"], re.compile(m["pattern"])) for m in rules["markers"]],
        "part": re.compile(rules["part_heading"]["pattern"]),
        "part_max": int(rules["part_heading"]["max_length"]),
        "inline": re.compile(rules["inline_items"]["pattern"]),
        "inline_level": int(rules["inline_items"]["level"]),
        "terminator": re.compile("[" + re.escape(rules["heading_terminators"] + ":") + "]"),
        "max_heading": int(rules["max_heading_length"]),
        "sentence_clauses": int(rules["sentence_heading_clauses"]),
        "quantity": re.compile(r"\d+(?:\.\d+)?\s*[万亿千]?\s*(?:" + "|".join(
            re.escape(u) for u in sorted(units(), key=len, reverse=True)) + ")"),
        "kinds": rules["kinds"],
    }


# --- one heading ----------------------------------------------------------------------
def match_heading(paragraph: str, folded: str | None = None) -> tuple[int, str | None, int] | None:
    """(level, label, offset where the heading text starts) if the paragraph opens a section.
    `folded` is fold(paragraph) when the caller has it already."""
    folded = fold(paragraph) if folded is None else folded
    for level, pattern in _rules()["markers"]:
        match = pattern.match(folded)
        if match and folded[match.end():].strip():
            return level, match.group("label"), match.end()
    stripped = folded.strip()
    if len(stripped) <= _rules()["part_max"] and _rules()["part"].match(stripped):
        return 0, None, len(folded) - len(folded.lstrip())
    return None


def split_heading(rest: str, folded: str | None = None) -> tuple[str | None, int]:
    """Cut the heading off the text after its marker: (heading, characters consumed).

    The heading ends at the first sentence terminator or colon, or where an inline
    一是 item starts. (None, 0) means it runs into its paragraph with no punctuation
    within reach; `cut_by_siblings` decides then.
    """
    folded = fold(rest) if folded is None else folded
    found = _rules()["terminator"].search(folded)
    cut = found.start() if found else None
    inline = folded.find("一是")
    if inline > 0 and (cut is None or inline < cut):
        cut, consumed = inline, inline
    elif cut is not None:
        consumed = cut + 1
    if cut is None:
        if len(folded.strip()) <= _rules()["max_heading"]:
            return _first_clause_of_sentence(rest, folded, len(rest), len(rest))
        return None, 0
    if cut > _rules()["max_heading"]:
        return None, 0
    return _first_clause_of_sentence(rest, folded, cut, consumed)


def _first_clause_of_sentence(rest: str, folded_rest: str, cut: int, consumed: int) -> tuple[str, int]:
    """1.换届工作全面完成，培训干部4期。 → 换届工作全面完成: an item written as a sentence
    (a quantity in it, or many clauses) has its first clause as heading, not all of it."""
    folded = folded_rest[:cut]
    found = _COMMA.search(folded)
    if found is None:
        return clean_heading(rest[:cut]), consumed
    comma = found.start()
    clauses = len(_COMMA.split(folded))
    if clauses >= _rules()["sentence_clauses"] or _rules()["quantity"].search(folded):
        return clean_heading(rest[:comma]), comma + 1
    return clean_heading(rest[:cut]), consumed


def clean_heading(text: str) -> str:
    return text.strip().rstrip("，,：:、 ").strip()


def cut_by_siblings(rest: str, siblings: list[str]) -> tuple[str, int]:
    """A fused heading takes its siblings' clause shape: two clauses of 6 and 8 → 6 + ， + 8.

    Its last clause is taken whole when it ends at a comma within half again the siblings'
    length (a heading clause), else cut at their length (it runs into the text).
    """
    folded = fold(rest)
    pieces = re.split(r"([，,])", folded)  # clauses interleaved with their commas
    shapes = [re.split(r"[，,]", fold(s)) for s in siblings]
    clauses, last = 1, _rules()["max_heading"]
    if shapes:
        clauses = Counter(len(s) for s in shapes).most_common(1)[0][0]
        last = round(statistics.median(len(s[-1]) for s in shapes if len(s) == clauses))
    if len(pieces) <= 2 * (clauses - 1) or last <= 0:
        clauses, last = 1, _rules()["max_heading"]
    head = "".join(pieces[: 2 * (clauses - 1)])
    piece = pieces[2 * (clauses - 1)]
    take = len(piece) if len(piece) <= 1.5 * last + 2 else last
    cut = len(head) + min(take, _rules()["max_heading"])
    return clean_heading(rest[:cut]), cut


# --- the tree -------------------------------------------------------------------------
def parse_outline(
    paragraphs: list[str],
    summary_year: int | None = None,
    plan_year: int | None = None,
    title: str | None = None,
    index_no: str | None = None,
) -> Outline:
    body_text, offsets = _join(paragraphs)
    folded_body = fold(body_text)
    warnings: list[str] = []
    root = _Node(level=-1)
    preamble = _Node(level=0, parent=root)
    current = preamble
    last_number: dict[int, int | None] = {}  # level → number of its last heading
    for index, paragraph in enumerate(paragraphs):
        folded = folded_body[offsets[index]:offsets[index] + len(paragraph)]
        node = _heading_node(paragraph, folded, offsets[index], last_number, warnings, index)
        if node is not None:
            _attach(node, root if current is preamble else current)
            last_number = {lvl: n for lvl, n in last_number.items() if lvl < node.level}
            last_number[node.level] = node.number
            current = node
        current.spans.append((offsets[index], offsets[index] + len(paragraph)))
    nodes = list(_walk(root))
    _resolve_pending(nodes, body_text, warnings)
    for node in nodes:
        _split_inline_items(node, body_text, folded_body)
    sections = _to_sections(root, preamble, body_text, index_no)
    tag_kinds(sections, summary_year, plan_year, title)
    return _outline(sections, body_text, folded_body, warnings)


def flat_outline(paragraphs: list[str], index_no: str | None = None) -> Outline:
    """The body as one untitled section: what is left when the outline rules fail on a
    page, so its metrics can still be read (no heading logic runs here)."""
    body_text = "\n".join(paragraphs)
    section = Section(index_no=index_no, section_id="0", parent_id=None, level=0, label=None, heading=None,
                      text=body_text, ordinal=0)  # fmt: skip
    return Outline([section] if body_text else [], body_text, [], [0] if body_text else [], ["0"] if body_text else [])


def _join(paragraphs: list[str]) -> tuple[str, list[int]]:
    offsets, position = [], 0
    for paragraph in paragraphs:
        offsets.append(position)
        position += len(paragraph) + 1
    return "\n".join(paragraphs), offsets


def _heading_node(paragraph: str, folded: str, offset: int, last_number: dict[int, int | None],
                  warnings: list[str], index: int) -> _Node | None:  # fmt: skip
    found = match_heading(paragraph, folded)
    if found is None:
        return None
    level, label, start = found
    number = parse_label_number(label) if label else None
    if number is not None:
        expected = (last_number.get(level) or 0) + 1
        if not expected <= number <= expected + 1:  # allow one missed heading, no more
            warnings.append(f"paragraph {index}: {paragraph[:12]!r} breaks the numbering of its level; kept as text")
            return None
    node = _Node(level=level, label=label, number=number)
    heading, consumed = split_heading(paragraph[start:], folded[start:])
    if heading is None:
        node.pending = (offset + start, offset + len(paragraph))
    node.heading, node.text_start = heading, offset + start + consumed
    return node


def _attach(node: _Node, current: _Node) -> None:
    parent = current
    while parent.level >= node.level and parent.parent is not None:  # the root (level -1) has none
        parent = parent.parent
    node.parent = parent
    parent.children.append(node)


def _walk(node: _Node):
    for child in node.children:
        yield child
        yield from _walk(child)


def _resolve_pending(nodes: list[_Node], body_text: str, warnings: list[str]) -> None:
    for node in nodes:
        if node.pending is None:
            continue
        start, end = node.pending
        family = node.parent.children if node.parent else []  # a pending node is always attached
        siblings = [n.heading for n in family if n.heading and n.level == node.level]
        node.heading, consumed = cut_by_siblings(body_text[start:end], siblings)
        node.text_start, node.pending = start + consumed, None
        warnings.append(f"heading {node.heading!r} runs into its text without punctuation; cut by its siblings' shape")


def _split_inline_items(node: _Node, body_text: str, folded_body: str) -> None:
    """一是…二是… runs inside a section's own text become child items."""
    level = max(_rules()["inline_level"], node.level + 1)
    kept: list[tuple[int, int]] = []
    for span_start, span_end in node.spans:
        text_start = max(span_start, node.text_start) if node.label or node.heading else span_start
        found = _inline_matches(folded_body[text_start:span_end])
        if not found:
            kept.append((span_start, span_end))
            continue
        kept.append((span_start, text_start + found[0][0]))
        ends = [f[0] for f in found[1:]] + [span_end - text_start]
        for (start, label), end in zip(found, ends):
            item = _Node(level=level, label=label, number=parse_label_number(label), parent=node)
            item.spans = [(text_start + start, text_start + end)]
            item.text_start = text_start + start + len(label) + 1
            item.heading = _inline_heading(body_text, folded_body, item.text_start, text_start + end)
            node.children.append(item)
    node.spans = kept


def _inline_matches(folded: str) -> list[tuple[int, str]]:
    """Positions of 一是, 二是, … in runs that start at 一 and count up by one."""
    found: list[tuple[int, str]] = []
    expected = 1
    for match in _rules()["inline"].finditer(folded):
        number = parse_label_number(match.group("label"))
        if number == 1 or (found and number == expected):
            found.append((match.start("label"), match.group("label")))
            expected = number + 1
    return found


def _inline_heading(body_text: str, folded_body: str, start: int, end: int) -> str:
    """The heading of the inline item whose text is body_text[start:end] (searched in place:
    an item's text can run long, its heading is the first clause or so)."""
    found = _SENTENCE_STOP.search(folded_body, start, end)
    stop = found.start() if found else end
    if stop - start > 30:
        found = _COMMA.search(folded_body, start, stop)
        stop = found.start() if found else start + 30
    return clean_heading(body_text[start:stop])


_COMMA = re.compile(r"[，,]")
_SENTENCE_STOP = re.compile(r"[。；;]")


# --- sections --------------------------------------------------------------------------
def _to_sections(root: _Node, preamble: _Node, body_text: str, index_no: str | None) -> list[Section]:
    placed: list[tuple[_Node, str, str | None]] = []
    if any(body_text[s:e].strip() for s, e in preamble.spans):
        placed.append((preamble, "0", None))

    def walk(node: _Node, path: str | None) -> None:
        for number, child in enumerate(node.children, start=1):
            section_id = f"{path}.{number}" if path else str(number)
            placed.append((child, section_id, path))
            walk(child, section_id)

    walk(root, None)
    placed.sort(key=lambda item: _first_offset(item[0]))
    return [_section(node, sid, pid, body_text, index_no, i) for i, (node, sid, pid) in enumerate(placed)]


def _first_offset(node: _Node) -> int:
    return min(node.spans)[0] if node.spans else node.text_start


def _section(node: _Node, section_id: str, parent_id: str | None, body_text: str, index_no, ordinal: int) -> Section:
    text_start = node.text_start
    if len(node.spans) == 1:  # the common case: one paragraph, or one inline item
        start, end = node.spans[0]
        text = body_text[max(start, text_start):end].strip()
    else:
        parts = [body_text[max(start, text_start):end].strip() for start, end in node.spans]
        text = "\n".join(p for p in parts if p)
    section = Section(
        index_no=index_no, section_id=section_id, parent_id=parent_id, level=max(node.level, 0),
        label=node.label, heading=node.heading, text=text, ordinal=ordinal,
    )  # fmt: skip
    section.spans = list(node.spans)  # type: ignore[attr-defined]  # consumed by _outline only
    return section


def _outline(sections: list[Section], body_text: str, folded_body: str, warnings: list[str]) -> Outline:
    ranges = sorted((start, s.section_id) for s in sections for start, _ in s.spans)  # type: ignore[attr-defined]
    for section in sections:
        del section.spans  # type: ignore[attr-defined]
    return Outline(sections, body_text, warnings, [r[0] for r in ranges], [r[1] for r in ranges], folded_body)


# --- kinds and years ---------------------------------------------------------------------
def tag_kinds(sections: list[Section], summary_year: int | None, plan_year: int | None, title: str | None) -> None:
    """summary / plan / problems / highlights from headings of levels 0-1, inherited below."""
    by_id = {s.section_id: s for s in sections}
    default = default_kind(title)
    for section in sections:  # document order: parents come before their children
        parent = by_id.get(section.parent_id) if section.parent_id else None
        own = kind_of(section.heading) if parent is None else None
        section.kind = own or (parent.kind if parent else None) or default
        explicit = _EXPLICIT_YEAR.match(fold(section.heading)) if section.heading and parent is None else None
        if explicit:
            section.year = int(explicit.group(1))
        else:
            section.year = (parent.year if parent else None) or year_for_kind(section.kind, summary_year, plan_year)


_EXPLICIT_YEAR = re.compile(r"((?:19|20)\d{2})年")


def kind_of(heading: str | None) -> str | None:
    if not heading:
        return None
    for kind, words in _rules()["kinds"].items():
        if any(w in heading for w in words):
            return kind
    return None


def default_kind(title: str | None) -> str:
    """Untagged sections belong to the report's first part: its summary, unless the title
    names only a plan (工作要点, 实施方案), with the title words of config/metadata.yaml."""
    if not title:
        return "summary"
    words = metadata_rules()["title_years"]
    names = {kind: any(w in title for w in words[kind]) for kind in ("summary", "plan")}
    return "plan" if names["plan"] and not names["summary"] else "summary"


def year_for_kind(kind: str | None, summary_year: int | None, plan_year: int | None) -> int | None:
    if kind == "plan":
        return plan_year or summary_year
    return summary_year or plan_year
