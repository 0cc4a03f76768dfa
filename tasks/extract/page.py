"""An HTML page as an lxml tree, and the tree as lines of text.

Parsing and serialising are the only places that touch markup; everything after them
works on lines (one per block element or table cell, <br> breaks lines) and is pure.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

from lxml import etree
from lxml.cssselect import CSSSelector

from tasks.extract.text import normalize_space
from tasks.extract.vocab import page_rules

BLOCK_TAGS = frozenset(
    "p div section article header footer nav aside main h1 h2 h3 h4 h5 h6 ul ol li dl dt dd "
    "table thead tbody tfoot tr td th caption blockquote pre form fieldset address figure "
    "figcaption hr center title".split()
)
CELL_TAGS = frozenset({"td", "th"})
EMPTY_CELL = "\x1f"  # stands for a table cell with no text, so "文号: | (empty)" keeps its shape
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_MARKUP = re.compile(r"</?[A-Za-z][^<>]*>")


class PageTooDeep(ValueError):
    """The page nests deeper than any parser here can read; the message says how it failed."""


def parse_html(html: str) -> etree._Element:
    """parse_page without its warnings."""
    return parse_page(html)[0]


def parse_page(html: str) -> tuple[etree._Element, list[str]]:
    """Parse leniently and drop non-content elements (scripts, styles, forms' controls); the
    warnings say when libxml2 hit a limit and a second parser read the page.

    The tree is libxml2's HTML tree as lxml.html builds it, but of plain lxml elements:
    lxml.html looks up a Python class for every element each time one is touched, which
    costs more than any rule does with it (text_content, drop_tree: see tasks.extract.body).
    A page nested past libxml2's limit (its error is a fatal "Excessive depth", and the
    rest of the page is gone) is read again by lexbor (tasks/extract/deep.py); if that
    fails too, PageTooDeep says so and the page is rejected with that reason.
    """
    html = _XML_DECLARATION.sub("", html)  # lxml refuses str input that declares an encoding
    parser = _parser()
    root = etree.fromstring(html, parser)
    warnings: list[str] = []
    if _hit_depth_limit(parser):
        from tasks.extract.deep import MAX_DEPTH, flatten_deep_html

        root = etree.fromstring(flatten_deep_html(html), parser)
        if _hit_depth_limit(parser):
            raise PageTooDeep("libxml2 stopped at its nesting limit, and so did the page lexbor wrote back")
        warnings.append(f"the page nests deeper than libxml2 reads (2048 levels): read with lexbor, "
                        f"nesting past {MAX_DEPTH} levels flattened")  # fmt: skip
    if root is None:  # nothing but whitespace, comments or CDATA: a page with no content
        return empty_document(), warnings
    etree.strip_elements(root, *page_rules()["drop_tags"], etree.Comment, etree.ProcessingInstruction, with_tail=False)
    return root, warnings


def _hit_depth_limit(parser: etree.HTMLParser) -> bool:
    return any("Excessive depth" in entry.message for entry in parser.error_log)


def empty_document() -> etree._Element:
    """<html><body></body></html>: what a page without content parses to."""
    return etree.fromstring("<html><body></body></html>", _parser())


_LOCAL = threading.local()


def _parser() -> etree.HTMLParser:
    """libxml2 silently drops a text node over 10 MB unless told the tree may be huge;
    page size is bounded where pages are fetched (settings.MAX_RESPONSE_BYTES). One parser
    per thread: its error log is read after each parse."""
    parser = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = etree.HTMLParser(huge_tree=True)
    return parser


text_content = etree.XPath("string()")  # what lxml.html's HtmlElement.text_content() is


def drop_tree(element: etree._Element) -> None:
    """Remove `element` and its subtree, keeping its tail text (lxml.html's drop_tree)."""
    parent = element.getparent()
    assert parent is not None
    if element.tail:
        previous = element.getprevious()
        if previous is None:
            parent.text = (parent.text or "") + element.tail
        else:
            previous.tail = (previous.tail or "") + element.tail
    parent.remove(element)


@lru_cache(maxsize=256)
def selector(css: str) -> CSSSelector:
    """A compiled CSS selector; compiled once per process (they are data in sources.yaml)."""
    return CSSSelector(css)


def select(root: etree._Element, css: str) -> list[etree._Element]:
    try:
        return selector(css)(root)
    except Exception:  # an invalid selector in configuration must not lose the page
        return []


def element_lines(element: etree._Element, skip: etree._Element | None = None,
                  keep_empty_cells: bool = False) -> list[str]:  # fmt: skip
    """The text of `element` as lines: block elements and table cells end lines, <br> too.

    `skip` leaves one subtree out (the body, when reading metadata). Empty cells become
    EMPTY_CELL lines when `keep_empty_cells`, since a label followed by an empty cell has
    no value (and must not take the next cell's).
    """
    parts: list[str] = []
    append = parts.append
    walker = etree.iterwalk(element, events=("start", "end"))
    # lxml builds a new str for every .tag, .text and .tail read: each is read once
    for event, node in walker:
        tag = node.tag
        if not isinstance(tag, str):
            tag = ""
        if event == "start":
            if node is skip:
                walker.skip_subtree()
                append("\n")
                continue
            if tag in BLOCK_TAGS:
                append("\n")
            if tag == "br":
                append("\n")
            elif text := node.text:
                append(text)
            continue
        if keep_empty_cells and tag in CELL_TAGS:
            append(EMPTY_CELL)
        if tag in BLOCK_TAGS:
            append("\n")
        if node is not element and (tail := node.tail):
            append(tail)
    return _to_lines("".join(parts), keep_empty_cells)


def _to_lines(text: str, keep_empty_cells: bool) -> list[str]:
    """Each line space-normalised (EMPTY_CELL is whitespace too), empty ones dropped, or kept
    as EMPTY_CELL when they held an empty cell. Most lines of a page are the indentation
    between tags: a strip tells them apart before any regex runs."""
    lines = []
    for raw in text.split("\n"):
        line = raw.strip()
        if line:
            line = normalize_space(line)  # a zero-width character alone is not text either
        if line:
            lines.append(line)
        elif keep_empty_cells and EMPTY_CELL in raw:
            lines.append(EMPTY_CELL)
    return lines


def meta_content(tags: dict[str, str], names: list[str]) -> str | None:
    """The content of the first <meta name=...> among `names` (case-insensitive), from
    meta_tags(root): read once per page, since several fields ask."""
    return next((tags[n.lower()] for n in names if n.lower() in tags), None)


def meta_tags(root: etree._Element) -> dict[str, str]:
    """name (lowercased) → content of the page's <meta> tags, the first of each name."""
    found: dict[str, str] = {}
    for meta in root.iter("meta"):
        name = (meta.get("name") or meta.get("property") or "").strip().lower()
        content = normalize_space(_MARKUP.sub("", meta.get("content") or ""))  # a CMS may put tags in it
        if name and content:
            found.setdefault(name, content)
    return found
