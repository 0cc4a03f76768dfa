"""Strip the site chrome: find the article body and return its paragraphs.

Container first (the source's selectors, then common CMS selectors, then a text-density
fallback that steps down into a cell holding nearly all the text), chrome elements inside
it next (share/print widgets by class, and any block made mostly of links: menus, related
items, pagers), then line rules (widget, page-info, breadcrumb and footer lines, metadata
label rows, a 相关阅读 tail, a cover letter or title repeated at the top, a cover or
signature block of org names and dates). All rules are data in config/page.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from lxml import etree

from tasks.extract.head import Head, is_salutation, is_title_line, split_head
from tasks.records import Attachment
from tasks.extract.outline import match_heading, toc_range
from tasks.extract.page import BLOCK_TAGS, drop_tree, element_lines, select, text_content
from tasks.extract.text import CLAUSE_END, fold, fold_lines, squash
from tasks.extract.vocab import metadata_rules, page_rules


@dataclass
class Body:
    paragraphs: list[str]
    container: etree._Element | None
    method: str  # source_selector | cms_selector | density | page
    warnings: list[str] = field(default_factory=list)
    head: Head = field(default_factory=lambda: Head([]))  # the headline block cut off the top
    attachments: list[Attachment] = field(default_factory=list)  # linked files, out of the text
    folded: list[str] | None = None  # fold() of each paragraph, once clean_body has them


@lru_cache(maxsize=1)
def _rules() -> dict:
    rules = page_rules()
    return {
        "chrome_lines": _line_patterns(rules["chrome_line_patterns"]),
        "markers": tuple(rules["chrome_markers"]),
        "any_marker": re.compile("|".join(map(re.escape, rules["chrome_markers"])) or "(?!)"),
        "marker_max": int(rules["chrome_marker_max_line"]),
        "class_words": tuple(rules["chrome_class_words"]),
        "org": re.compile(rules["signature_org_pattern"]),
        "date": re.compile(rules["signature_date_pattern"]),
        "cover_max": int(rules["cover_max_line"]),
        "min_chars": int(rules["min_body_chars"]),
        "tail_start": re.compile(rules["tail_start_pattern"]),
        "tail_max": int(rules["tail_item_max_line"]),
        "file": re.compile(rules["attachment_link_pattern"], re.IGNORECASE),
        "link_tags": frozenset(rules["link_block_tags"]),
        "link_min": int(rules["link_block_min_links"]),
        "link_ratio": float(rules["link_block_link_ratio"]),
        "labels": _metadata_label_pattern(),
        "year_start": re.compile(r"((19|20)\d{2}|[〇○零一二][〇○零一二三四五六七八九]{3})\s*年"),
    }


def _line_patterns(patterns: list[str]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The chrome line patterns as two regexes: those anchored at the start of the line
    (every branch opens with ^), tried at its start only, and the others, searched for.
    A search for an alternation of ^-patterns would try each of them at every position."""
    anchored = [p for p in patterns if _anchored(p)]
    floating = [p for p in patterns if not _anchored(p)]
    return (re.compile("|".join(f"(?:{p})" for p in anchored) or "(?!)"),
            re.compile("|".join(f"(?:{p})" for p in floating) or "(?!)"))  # fmt: skip


def _anchored(pattern: str) -> bool:
    """Whether every top-level branch of `pattern` starts with ^ (and no flag makes ^ match
    after a line break)."""
    if re.compile(pattern).flags & re.MULTILINE:
        return False
    branches: list[str] = []
    depth, start, i, in_class, class_start = 0, 0, 0, False, -1
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]" or i == class_start
        elif char == "[":
            in_class, class_start = True, i + 1 + (pattern[i + 1:i + 2] == "^")
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
        i += 1
    branches.append(pattern[start:])
    return all(branch.startswith("^") for branch in branches)


def _metadata_label_pattern() -> re.Pattern[str]:
    """A line that is only a metadata label (索引号：, 发 布 机 构) or starts with one and a colon."""
    rules = metadata_rules()
    labels = {label for names in rules["fields"].values() for label in names} | set(rules["other_labels"])
    spaced = "|".join(r"\s*".join(map(re.escape, label)) for label in sorted(labels, key=len, reverse=True))
    return re.compile(rf"^(?:{spaced})\s*(?:[:：]|$)")


def locate_body(root: etree._Element, body_selectors: tuple[str, ...] = ()) -> Body:
    """Find the body container (does not change the tree); paragraphs come from `clean_body`."""
    container, method = find_container(root, body_selectors)
    warnings = ["no known body container; chose the densest text block"] if method == "density" else []
    if container is None:
        body_element = root.find("body")
        container, method = (body_element if body_element is not None else root), "page"
        warnings.append("no body container found; the whole page was read")
    return Body([], container, method, warnings)


def clean_body(body: Body, title: str | None = None) -> Body:
    """Remove chrome inside the container and return the body's paragraphs."""
    body.attachments = take_attachments(body.container)
    remove_chrome_elements(body.container)
    drop_trailing_links(body.container)
    body.head, body.paragraphs, body.folded = clean_lines_folded(element_lines(body.container), title)
    if not body.paragraphs:
        body.warnings.append("the body is empty after cleaning")
    return body


# --- the container ------------------------------------------------------------------------
def find_container(root: etree._Element, body_selectors: tuple[str, ...]) -> tuple[etree._Element | None, str]:
    for method, selectors in (("source_selector", body_selectors), ("cms_selector", tuple(page_rules()["body_selectors"]))):
        found = _first_selected(root, selectors)
        if found is not None:
            return found, method
    best = densest_block(root)
    return (best, "density") if best is not None else (None, "page")


def _first_selected(root: etree._Element, selectors: tuple[str, ...]) -> etree._Element | None:
    """The element of the first selector (in priority order) holding enough text."""
    index = None
    for css in selectors:
        if _SIMPLE_SELECTOR.fullmatch(css):  # #id / .class: one pass over the tree serves them all
            index = index if index is not None else _id_class_index(root)
            elements = index.get(css, [])
        else:
            elements = select(root, css)
        lengths = [(e, n) for e in elements if (n := _text_length(e)) >= _rules()["min_chars"]]
        if lengths:
            return max(lengths, key=lambda found: found[1])[0]  # the first of the longest
    return None


_SIMPLE_SELECTOR = re.compile(r"[#.][\w-]+")


def _id_class_index(root: etree._Element) -> dict[str, list[etree._Element]]:
    """'#id' and '.class' → elements, for the elements that have an id or a class."""
    index: dict[str, list[etree._Element]] = {}
    for element in root.xpath("//*[@id or @class]"):
        if ident := element.get("id"):
            index.setdefault("#" + ident, []).append(element)
        for name in (element.get("class") or "").split():
            index.setdefault("." + name, []).append(element)
    return index


def _text_length(element: etree._Element) -> int:
    return len(squash(text_content(element)))


def densest_block(root: etree._Element) -> etree._Element | None:
    """Readability-style scoring: each text block scores its length minus twice its link
    text; the score goes to its parent and half of it to its grandparent."""
    scores: dict[etree._Element, float] = {}
    for element in root.iter("p", "div", "td", "li", "section", "article", "font", "span"):
        if any(isinstance(tag := c.tag, str) and tag in BLOCK_TAGS for c in element):
            continue  # score leaf blocks only; containers collect from them
        text = squash(text_content(element))
        if len(text) < 20:
            continue
        links = sum(len(squash(text_content(a))) for a in element.iter("a"))
        score = len(text) - 2 * links
        if score <= 0:
            continue
        parent = element.getparent()
        for ancestor, share in ((parent, 1.0), (parent.getparent() if parent is not None else None, 0.5)):
            if ancestor is not None and ancestor.tag not in ("body", "html"):
                scores[ancestor] = scores.get(ancestor, 0.0) + share * score
    if not scores:
        return None
    best = max(scores, key=scores.__getitem__)
    return _dominant_descendant(best) if scores[best] >= _rules()["min_chars"] else None


def _dominant_descendant(element: etree._Element) -> etree._Element:
    """Step down while one child holds nearly all the text: a row whose one cell is the
    body (<tr><td>menu</td><td>body<br>…</td>) becomes that cell, so its siblings stay out."""
    total = _text_length(element)
    while total:
        children = [(c, _text_length(c)) for c in element if isinstance(tag := c.tag, str) and tag in BLOCK_TAGS]
        best, length = max(children, key=lambda child: child[1], default=(None, 0))
        if best is None or length < 0.9 * total:
            return element
        element, total = best, length
    return element


def remove_chrome_elements(container: etree._Element) -> None:
    """Drop share/print/related/pager widgets inside the body: by class or id, or because
    the block is mostly links (menus and related-item lists carry no class we know)."""
    words = _rules()["class_words"]
    for element in list(container.iterdescendants()):
        if not isinstance(element.tag, str) or element.getparent() is None:
            continue
        tokens = f"{element.get('class', '')} {element.get('id', '')}".lower().split()
        if any(word in token for token in tokens for word in words) or is_link_block(element):
            drop_tree(element)


def drop_trailing_links(container: etree._Element) -> None:
    """Paragraphs at the end of the body that are nothing but a link: related items (政策解读,
    明白卡) a page lists after its text. Text never ends on a paragraph that is all link."""
    while True:
        last = _last_block_with_text(container)
        if last is None:
            return
        linked = "".join(squash(text_content(a)) for a in last.iter("a"))
        if not linked or linked != squash(text_content(last)) or last.getparent() is None:
            return
        drop_tree(last)


_PARAGRAPH_TAGS = ("p", "li", "dd", "div")


def _last_block_with_text(container: etree._Element) -> etree._Element | None:
    """The last paragraph block inside `container` that holds text, looked for from the end
    (reading every block's text, a nested div's again and again, costs far more)."""
    blocks = list(container.iter(*_PARAGRAPH_TAGS))
    for i in range(len(blocks) - 1, -1, -1):  # (mypyc cannot compile reversed() over these)
        if blocks[i] is not container and squash(text_content(blocks[i])):
            return blocks[i]
    return None


def take_attachments(container: etree._Element) -> list[Attachment]:
    """Links to files (an href or a text ending in .pdf, .docx …, a download.jsp): recorded,
    and the link's paragraph taken out of the text when the link is all it says."""
    found: list[Attachment] = []
    for anchor in list(container.iter("a")):
        href = (anchor.get("href") or "").strip()
        name = squash_spaces(text_content(anchor))
        if not name or not (_rules()["file"].search(href) or _rules()["file"].search(name)):
            continue
        found.append(Attachment(name, href or None))
        block = anchor
        while block.getparent() is not None and block.getparent() is not container and \
                squash(text_content(block.getparent())) == squash(text_content(anchor)):  # fmt: skip
            block = block.getparent()
        if squash(text_content(block)) == squash(name) and block.getparent() is not None:
            drop_tree(block)
    return found


def squash_spaces(text: str) -> str:
    return " ".join(text.split())


def is_link_block(element: etree._Element) -> bool:
    """Several links making up most of the block's text: navigation, not prose."""
    if element.tag not in _rules()["link_tags"]:
        return False
    anchors = list(element.iter("a"))
    if len(anchors) < _rules()["link_min"]:
        return False
    text = _text_length(element)
    linked = sum(_text_length(a) for a in anchors)
    return text > 0 and linked >= _rules()["link_ratio"] * text


# --- the lines --------------------------------------------------------------------------------
def clean_lines(lines: list[str], title: str | None = None) -> list[str]:
    """Body paragraphs from container lines (see clean_lines_with_head)."""
    return clean_lines_with_head(lines, title)[1]


def clean_lines_with_head(lines: list[str], title: str | None = None) -> tuple[Head, list[str]]:
    """The headline block and the body paragraphs of container lines: chrome lines out; the
    title repeated, the headline block (title, delivery note, speaker, dates) and a cover
    block off the top; related items off the end. A letter before the document it issues
    (印发给你们…, signed) is the document's text and stays, and so does the signature a
    text ends with (tasks.extract.head reads it)."""
    head, paragraphs, _ = clean_lines_folded(lines, title)
    return head, paragraphs


def clean_lines_folded(lines: list[str], title: str | None = None) -> tuple[Head, list[str], list[str] | None]:
    """clean_lines_with_head(), and fold() of each paragraph (None if they cannot be had
    from the lines' folds)."""
    # every line folded in one pass, for the rules that read each line; label rows go first,
    # with the value cells after a bare label (a label alone is also a chrome line)
    lines_folded = strip_tail(zip(lines, fold_lines(lines)))
    kept_folded = [(line, folded) for line, folded in strip_label_lines(lines_folded) if not is_chrome_line(line, folded)]
    kept = [line for line, _ in kept_folded]
    toc_lines = strip_leading_toc(kept, title, [folded for _, folded in kept_folded[:TOC_LINES]])
    kept = strip_title_repeat(kept, toc_lines, title)
    head, kept = split_head(kept, opens_text, title)
    paragraphs = strip_cover_block(kept)
    # each step after the chrome lines keeps a tail of them: the paragraphs' folds are the
    # tail of theirs (checked, in case a step ever does otherwise)
    first = len(kept_folded) - len(paragraphs)
    if first >= 0 and all(paragraph is line for paragraph, (line, _) in zip(paragraphs, kept_folded[first:])):
        return head, paragraphs, [folded for _, folded in kept_folded[first:]]
    return head, paragraphs, None


def opens_text(line: str) -> bool:
    """A numbered outline heading (一、 (一) 1. 第一部分): the text has begun."""
    found = match_heading(line)
    return found is not None and (found[0] > 0 or found[1] is not None)


def is_chrome_line(line: str, folded: str | None = None) -> bool:
    """A widget, page-info, breadcrumb or footer line; or a line naming chrome markers (one
    in a short line, two at any length). Patterns read the line's head: chrome starts there.
    `folded` is fold(line) when the caller has it already."""
    rules = _rules()
    short = len(line) <= rules["marker_max"]
    head = line if short else line[: rules["marker_max"]]
    folded = (fold(head) if folded is None else folded[: len(head)]).strip()
    anchored, floating = rules["chrome_lines"]
    if anchored.match(folded) or floating.search(folded):
        return True
    if not rules["any_marker"].search(line) and not (short and rules["any_marker"].search(folded)):
        return False  # most lines name no marker at all
    markers = {m for m in rules["markers"] if m in line or (short and m in folded)}
    return len(markers) >= 2 or (bool(markers) and short)


def _is_sentence(line: str) -> bool:
    return _SENTENCE_MARK.search(line) is not None


_SENTENCE_MARK = re.compile(r"[。；;！？!?]")


def strip_label_lines(lines_folded: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Metadata label lines (文号：…) and, for a bare label cell, the value cell after it
    (`lines_folded`: each line and its fold)."""
    kept: list[tuple[str, str]] = []
    skip_value = False
    for line, folded in lines_folded:
        squashed = _squash_short(line, folded)
        if squashed and _rules()["labels"].match(squashed):
            skip_value = _LABEL_ALONE.fullmatch(squashed) is not None  # label alone: its value follows
            continue
        if skip_value and len(line) <= _VALUE_MAX and not line.rstrip().endswith("。"):
            skip_value = False  # the value cell of a bare label (a title too, or 环境监测;通告)
            continue
        skip_value = False
        kept.append((line, folded))
    return kept


_LABEL_ALONE = re.compile(r"[^:：]+[:：]?")
_VALUE_MAX = 120  # characters of a value cell: the longest titles


def strip_tail(lines_folded: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """相关阅读 and the short item lines after it, up to the next sentence of text
    (`lines_folded`: each line and its fold)."""
    kept: list[tuple[str, str]] = []
    in_tail = False
    for line, folded in lines_folded:
        if len(line) <= _rules()["tail_max"] and _rules()["tail_start"].match(folded.strip()):
            in_tail = True
            continue
        if in_tail and len(line) <= _rules()["tail_max"]:
            continue  # a related item: a link's text, a sentence at most
        in_tail = False
        kept.append((line, folded))
    return kept


def _squash(text: str) -> str:
    return squash(fold(text))


def _squash_short(line: str, folded: str | None = None) -> str:
    """The squashed line if it is short enough to be a cover line, else '' (a long
    paragraph is never one, and is not worth folding again). `folded` is fold(line) when
    the caller has it already."""
    if len(line) > _rules()["cover_max"]:
        return ""
    return squash(fold(line) if folded is None else folded)


def strip_leading_toc(lines: list[str], title: str | None, folded: list[str] | None = None) -> int:
    """How many lines a table of contents takes at the very top, before the document's own
    title (目录 / 第一部分 报告 / … / 第一部分 报告 / 关于…的报告): it and the part caption
    repeated under it are not the text. 0 when the body does not open with one. `folded`:
    fold() of the first TOC_LINES lines, when the caller has them."""
    found = toc_range(lines[:TOC_LINES], folded[:TOC_LINES] if folded is not None else None)
    if found is None or found[0] > 1:
        return 0
    start, end = found
    entries = {squash(fold(line)) for line in lines[start:end]}
    if end < len(lines) and squash(fold(lines[end])) in entries:
        end += 1  # the part caption repeated above the title (第一部分 报告)
    return end if end < len(lines) and is_title_line(lines[end]) else 0


TOC_LINES = 60  # a table of contents at the top of a body is looked for in its first lines


def strip_title_repeat(lines: list[str], skip: int, title: str | None) -> list[str]:
    """The title shown again at the top of the body, possibly over several lines (after
    `skip` lines of a table of contents, which go too)."""
    lines = lines[skip:]
    if not title or not lines:
        return lines
    target, joined = _squash(title), ""
    for count, line in enumerate(lines[:4], start=1):
        if len(line) > 2 * len(title) + 20:
            break
        joined += _squash(line)
        if joined == target:
            return lines[count:]
        if not target.startswith(joined):
            break
    return lines


def _is_org_line(line: str) -> bool:
    return bool(_rules()["org"].match(_squash_short(line)))


def _is_date_line(line: str) -> bool:
    return bool(_rules()["date"].match(_squash_short(line)))


def _is_cover_line(line: str) -> bool:
    """An org name, a date, or both on one line (某县民政局　2024年1月5日)."""
    squashed = _squash_short(line)
    if not squashed:
        return False
    if _rules()["org"].match(squashed) or _rules()["date"].match(squashed):
        return True
    year = _rules()["year_start"].search(squashed)
    return bool(year and year.start() and _rules()["org"].match(squashed[: year.start()])
                and _rules()["date"].match(squashed[year.start():]))  # fmt: skip


def strip_cover_block(lines: list[str]) -> list[str]:
    """Short lines before the text that carry an org name or a date (a cover or signature)."""
    end = 0
    while (end < len(lines) and len(lines[end]) <= _rules()["cover_max"] and not CLAUSE_END.search(lines[end])
           and not opens_text(lines[end]) and not is_salutation(lines[end])):
        end += 1
    block = lines[:end]
    if end < len(lines) and any(_is_cover_line(line) for line in block):
        return lines[end:]
    return lines
