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
        "max_sentence_heading": int(rules["max_sentence_heading_length"]),
        "sentence_clauses": int(rules["sentence_heading_clauses"]),
        "quantity": re.compile(r"\d+(?:\.\d+)?\s*[万亿千]?\s*(?:" + "|".join(
            re.escape(u) for u in sorted(units(), key=len, reverse=True)) + ")"),
        "kinds": rules["kinds"],
    }


# --- one heading ----------------------------------------------------------------------
def match_heading(paragraph: str, folded: str | None = None) -> tuple[int, str | None, int] | None:
    """(level, label, offset where the heading text starts) if the paragraph opens a section.
    `folded` is fold(paragraph) when the caller has it already."""
    return _heading_of(fold(paragraph) if folded is None else folded)


@lru_cache(maxsize=1024)  # a paragraph is asked about by several stages: its runs, the tables of contents, the tree
def _heading_of(folded: str) -> tuple[int, str | None, int] | None:
    """match_heading() of a folded paragraph."""
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
    # a sub-item marker counts only before the terminator (it holds none), so the search stops
    # there rather than reading the rest of a long paragraph
    sub = _SUB_MARKER.search(folded, 0, len(folded) if cut is None else cut)
    if sub is not None and sub.start() > 0 and (inline <= 0 or sub.start() < inline):
        inline = sub.start()  # 一、基本职能及主要工作 (一)贯彻执行…: the sub-item starts the text
    if inline > 0 and (cut is None or inline < cut):
        cut, consumed = inline, inline
    elif cut is not None:
        consumed = cut + 1
    if cut is None:
        if len(folded.strip()) > _rules()["max_heading"]:
            return None, 0
        if _rules()["quantity"].search(folded):  # 1.加快推进…建设，确保年内新建…10个
            return _first_clause_of_sentence(rest, folded, len(rest), len(rest))
        return clean_heading(rest), len(rest)  # the paragraph is the heading, commas and all
    if cut > _rules()["max_sentence_heading"]:
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


# --- headings run into one paragraph ----------------------------------------------------
def split_unbroken(paragraphs: list[str], folded: list[str] | None = None) -> list[str]:
    """Paragraphs cut before the headings a page printed without line breaks: in a long
    paragraph, a 一、 or （一） marker right after the end of a sentence starts a new
    paragraph when its numbers run on (二、 after 一、 in the same paragraph, or the number
    its level expects after the headings seen so far). `folded`: fold() of each paragraph,
    when the caller has them."""
    return split_unbroken_folded(paragraphs, folded)[0]


def split_unbroken_folded(paragraphs: list[str], folded: list[str] | None = None) -> tuple[list[str], list[str]]:
    """split_unbroken(), and fold() of each paragraph it returns (for parse_outline)."""
    out: list[str] = []
    out_folded: list[str] = []
    last: dict[int, int] = {}  # level → number of the last heading seen
    for index, paragraph in enumerate(paragraphs):
        folded_paragraph = fold(paragraph) if folded is None else folded[index]  # once, for both rules
        if len(paragraph) >= UNBROKEN_MIN:
            pieces = _cut_at_headings(paragraph, last, folded_paragraph)
        else:
            pieces = [paragraph]
        for piece in pieces:
            folded_piece = folded_paragraph if piece is paragraph else fold(piece)
            found = match_heading(piece, folded_piece)
            if found is not None and found[0] in (1, 2) and found[1]:
                number = parse_label_number(found[1])
                if number is not None:
                    last = {lvl: n for lvl, n in last.items() if lvl < found[0]}
                    last[found[0]] = number
            out_folded.append(folded_piece)
        out += pieces
    return out, out_folded


UNBROKEN_MIN = 300  # characters: shorter paragraphs are left as the page wrote them
# Where a run-in heading starts: its end (the terminator before it is matched, not looked
# behind for, so that the regex engine skips to terminators instead of trying every position)
_RUN_IN = re.compile(r"[。；;！？!?]\s*(?=(?:[一二三四五六七八九十]+\s*、|[(（]\s*[一二三四五六七八九十]+\s*[)）]))")


def _cut_at_headings(paragraph: str, last: dict[int, int], folded: str) -> list[str]:
    candidates = []
    for match in _RUN_IN.finditer(folded):
        found = match_heading(folded[match.end():match.end() + 60])
        if found is not None and found[0] in (1, 2) and found[1]:
            candidates.append((match.end(), found[0], parse_label_number(found[1]) or 0))
    if not candidates:
        return [paragraph]
    head = match_heading(folded[:60])
    counts = dict(last)
    if head is not None and head[0] in (1, 2) and head[1]:
        counts = {lvl: n for lvl, n in counts.items() if lvl < head[0]}
        counts[head[0]] = parse_label_number(head[1]) or 0
    cuts = []
    for position, level, number in candidates:
        if number == counts.get(level, 0) + 1 or (number == 1 and level in counts and level > min(counts)):
            cuts.append(position)
            counts = {lvl: n for lvl, n in counts.items() if lvl < level}
            counts[level] = number
    if not cuts:
        return [paragraph]
    bounds = [0, *cuts, len(paragraph)]
    return [paragraph[a:b].strip() for a, b in zip(bounds, bounds[1:]) if paragraph[a:b].strip()]


# --- a table of contents --------------------------------------------------------------
def toc_range(paragraphs: list[str], folded: list[str] | None = None) -> tuple[int, int] | None:
    """(start, end) of a table of contents among the paragraphs, if there is one: the lines
    after a 目录 line, or a run of at least TOC_MIN_RUN headings with no text between them
    whose first comes back later; it ends where an entry comes back (the text begins) or
    prose starts. Its lines are not the outline.

    Folds, keys and entries are worked out for the paragraphs looked at only, once each:
    a run may start at each of the first TOC_SCAN lines, and rarely reaches further."""
    count = len(paragraphs)
    folds: list[str | None] = list(folded) if folded is not None else [None] * count
    keys: list[str | None] = [None] * count
    entries: list[int] = [-1] * count  # -1 not looked at yet, 0 no entry, 1 an entry

    def fold_at(i: int) -> str:
        text = folds[i]
        if text is None:
            text = folds[i] = fold(paragraphs[i])
        return text

    def key_at(i: int) -> str:
        key = keys[i]
        if key is None:
            key = keys[i] = _toc_key(fold_at(i))
        return key

    scan = min(count, TOC_SCAN)
    # a key is the line without its spaces, cut at the end: a 目录 line opens with 目 (项目,
    # 目标 inside a paragraph do not make its key worth reading)
    marker = next((i for i in range(scan) if fold_at(i).lstrip().startswith("目") and key_at(i) in ("目录", "目錄")),
                  None)  # fmt: skip
    strict = marker is None  # without a 目录 line, only numbered headings make a table of contents

    def entry_at(i: int) -> bool:
        if entries[i] < 0:
            entries[i] = 1 if _toc_like(fold_at(i), strict) else 0
        return entries[i] == 1

    if marker is not None:  # the entries after it, up to the first that comes back
        start = end = marker + 1
        seen: set[str] = set()
        while end < count and entry_at(end) and key_at(end) not in seen:
            seen.add(key_at(end))
            end += 1
        return (marker, end) if end > start else None
    # Without one, the first entry that opens a run [start, end) of entries with no key twice,
    # whose next line comes back. The run of the next entry holds the rest of this one (its
    # keys are still distinct), so it is extended rather than read again: each line is read
    # once however long the runs (a body whose every paragraph is numbered).
    end = 0
    run: set[str] = set()  # the keys of [start, end)
    for start in range(scan):
        if end <= start:
            end, run = start, set()
        if not all(i < count and entry_at(i) for i in range(end, start + TOC_MIN_RUN)):
            end = start  # fewer entries in a row than a table of contents needs: no key is read
            continue
        while end < count and entry_at(end) and key_at(end) not in run:
            run.add(key_at(end))
            end += 1
        # the line after a long enough run comes back (its key read only then: a long paragraph)
        if end - start >= TOC_MIN_RUN and end < count and key_at(end) in run:
            return start, end
        run.discard(key_at(start))
    return None


TOC_SCAN = 40  # a table of contents opens the body
TOC_MIN_RUN = 4  # headings in a row, without a 目录 line, before they can be a table of contents


def _toc_like(folded: str, strict: bool) -> bool:
    """An entry: a numbered heading; after a 目录 line, also a short line that is no sentence."""
    text = folded.strip()
    if not text:
        return False
    if match_heading(text, text) is not None:
        return True
    return not strict and len(text) <= 30 and not _SENTENCE_STOP.search(text)


def _toc_key(folded: str) -> str:
    """An entry as it may come back: no spaces, no closing punctuation, no page number."""
    key = "".join(folded.split()).rstrip("。；;:：")
    # the trailing run of 。.…· and digits (what re.sub(r"[。.…·\d]*$", "") removes; \d is
    # str.isdecimal), found from the end: the regex tries every position of a long paragraph
    end = len(key)
    while end > 0 and (key[end - 1] in "。.…·" or key[end - 1].isdecimal()):
        end -= 1
    return key[:end]


# --- the tree -------------------------------------------------------------------------
def parse_outline(
    paragraphs: list[str],
    summary_year: int | None = None,
    plan_year: int | None = None,
    title: str | None = None,
    index_no: str | None = None,
    folded: list[str] | None = None,
) -> Outline:
    """The outline of the paragraphs (`folded`: fold() of each, when the caller has them:
    folding keeps offsets and never reaches across a line break, so they join into the
    folded body)."""
    body_text, offsets = _join(paragraphs)
    folded_body = fold(body_text) if folded is None else "\n".join(folded)
    warnings: list[str] = []
    root = _Node(level=-1)
    preamble = _Node(level=0, parent=root)
    current = preamble
    last_number: dict[int, int | None] = {}  # level → number of its last heading under its parent
    run_on: dict[int, int] = {}  # level → number of its last heading anywhere
    if folded is None:
        folded = [folded_body[offsets[i]:offsets[i] + len(p)] for i, p in enumerate(paragraphs)]
    toc = toc_range(paragraphs, folded)
    listed: tuple[_Node, int] | None = None  # a list whose (一) runs on in its heading's line: (node, level)
    for index, paragraph in enumerate(paragraphs):
        in_toc = toc is not None and toc[0] <= index < toc[1]
        node = None if in_toc else _heading_node(paragraph, folded[index], offsets[index], last_number, warnings,
                                                 index, run_on)  # fmt: skip
        if node is not None and listed is not None and node.level == listed[1] and listed[0] is current:
            node = None  # (二)… of a list that began inline: items of the section's text, not headings
        if node is not None:
            _attach(node, root if current is preamble else current)
            last_number = {lvl: n for lvl, n in last_number.items() if lvl < node.level}
            last_number[node.level] = node.number
            current = node
            listed = _inline_list(node, folded_body)
        current.spans.append((offsets[index], offsets[index] + len(paragraph)))
    _demote_name_lists(root)
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
                  warnings: list[str], index: int, run_on: dict[int, int] | None = None) -> _Node | None:  # fmt: skip
    """The section a paragraph opens, if it opens one. Its number must continue its level
    under the current parent (one missed heading allowed), or continue the numbering the
    level has run through the whole document (`run_on`: (一)…(八) under 一、, then (九)
    under 二、, as in State Council documents)."""
    found = match_heading(paragraph, folded)
    if found is None:
        return None
    level, label, start = found
    if level >= 3 and _DATA_ROW.search(folded[start:]):
        return None  # 1 天台县 5661 8802: a numbered row of a table, not a heading
    number = parse_label_number(label) if label else None
    if number is not None:
        expected = (last_number.get(level) or 0) + 1
        continued = (run_on or {}).get(level, 0) + 1
        if not (expected <= number <= expected + 1 or (number == continued and number > expected)):
            warnings.append(f"paragraph {index}: {paragraph[:12]!r} breaks the numbering of its level; kept as text")
            return None
        if run_on is not None:
            run_on[level] = number
    node = _Node(level=level, label=label, number=number)
    heading, consumed = split_heading(paragraph[start:], folded[start:])
    if heading is None:
        node.pending = (offset + start, offset + len(paragraph))
    node.heading, node.text_start = heading, offset + start + consumed
    return node


def _demote_name_lists(node: _Node) -> None:
    """A run of NAME_LIST_MIN or more numbered lines of level 3 or deeper that are only short
    names, with no text under any of them (1.某某村 2.某某社区 …: an honour roll), is a list
    in its parent's text, not sections."""
    kids = node.children
    run: list[_Node] = []
    for child in [*kids, None]:
        if child is not None and child.level >= 3 and not child.children and _only_a_name(child):
            if run and run[-1].level != child.level:
                _fold_into(node, run)
                run = []
            run.append(child)
            continue
        _fold_into(node, run)
        run = []
    for child in node.children:
        _demote_name_lists(child)


def _only_a_name(node: _Node) -> bool:
    return (node.heading is not None and len(node.heading) <= NAME_MAX and not _SENTENCE_STOP.search(node.heading)
            and len(node.spans) == 1 and node.spans[0][1] - node.text_start <= 1)  # fmt: skip


def _fold_into(parent: _Node, run: list[_Node]) -> None:
    if len(run) < NAME_LIST_MIN:
        return
    parent.children = [c for c in parent.children if c not in run]
    parent.spans = sorted(parent.spans + [span for item in run for span in item.spans])


NAME_LIST_MIN = 3  # numbered names in a row before they are a list
NAME_MAX = 16  # characters of a name in such a list


def _inline_list(node: _Node, folded_body: str) -> tuple[_Node, int] | None:
    """(node, level) when the node's text starts with a numbered first item on its heading's
    line (一、基本职能 (一)贯彻执行…): the numbered paragraphs that follow are its list."""
    found = match_heading(folded_body[node.text_start:node.text_start + 80].split("\n")[0].strip())
    if node.pending is None and found is not None and found[0] > node.level and parse_label_number(found[1] or "") == 1:
        return node, found[0]
    return None


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
    """一是…二是… runs inside a section's own text become child items; a run may go on from
    paragraph to paragraph (一是… / 二是… / 三是…, one per paragraph)."""
    level = max(_rules()["inline_level"], node.level + 1)
    kept: list[tuple[int, int]] = []
    expected = 1
    for span_start, span_end in node.spans:
        text_start = max(span_start, node.text_start) if node.label or node.heading else span_start
        found, expected = _inline_matches(folded_body[text_start:span_end], expected)
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
    node.spans = [(start, end) for start, end in kept if end > start]


def _inline_matches(folded: str, expected: int = 1) -> tuple[list[tuple[int, str]], int]:
    """Positions of 一是, 二是, … in runs that start at 一 and count up by one, and the number
    the run expects next. A run goes on in this text only from its very start (the next
    paragraph opens with 二是)."""
    found: list[tuple[int, str]] = []
    for match in _rules()["inline"].finditer(folded):
        number = parse_label_number(match.group("label"))
        at_start = not folded[: match.start("label")].strip()
        if number == 1 or (number == expected and (found or (at_start and expected > 1))):
            found.append((match.start("label"), match.group("label")))
            expected = (number or 0) + 1
    return found, expected


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
_DATA_ROW = re.compile(r"\s\d+(?:\.\d+)?%?\s+\d+(?:\.\d+)?%?(?:\s|$)")  # two figures side by side
_SUB_MARKER = re.compile(r"\s[(]\s*一\s*[)]|\s1\s*[.、]")
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
