"""An HTML page as an lxml tree, and the tree as lines of text.

Parsing and serialising are the only places that touch markup; everything after them
works on lines (one per block element or table cell, <br> breaks lines) and is pure.
"""

from __future__ import annotations

import re
import weakref
from functools import lru_cache

import lxml.html
from lxml import etree
from lxml.cssselect import CSSSelector

from tasks.text import normalize_space
from tasks.vocab import page_rules

BLOCK_TAGS = frozenset(
    "p div section article header footer nav aside main h1 h2 h3 h4 h5 h6 ul ol li dl dt dd "
    "table thead tbody tfoot tr td th caption blockquote pre form fieldset address figure "
    "figcaption hr center title".split()
)
CELL_TAGS = frozenset({"td", "th"})
EMPTY_CELL = "\x1f"  # stands for a table cell with no text, so "文号: | (empty)" keeps its shape
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)


def parse_html(html: str) -> lxml.html.HtmlElement:
    """Parse leniently and drop non-content elements (scripts, styles, forms' controls)."""
    html = _XML_DECLARATION.sub("", html)  # lxml refuses str input that declares an encoding
    try:
        root = lxml.html.document_fromstring(html, parser=_parser())
    except etree.ParserError:  # nothing but whitespace, comments or CDATA: a page with no content
        return empty_document()
    etree.strip_elements(root, *page_rules()["drop_tags"], etree.Comment, etree.ProcessingInstruction, with_tail=False)
    return root


def empty_document() -> lxml.html.HtmlElement:
    """<html><body></body></html>: what a page without content parses to."""
    return lxml.html.document_fromstring("<html><body></body></html>")


@lru_cache(maxsize=1)
def _parser() -> lxml.html.HTMLParser:
    """libxml2 silently drops a text node over 10 MB unless told the tree may be huge;
    page size is bounded where pages are fetched (settings.MAX_RESPONSE_BYTES)."""
    return lxml.html.HTMLParser(huge_tree=True)


@lru_cache(maxsize=256)
def selector(css: str) -> CSSSelector:
    """A compiled CSS selector; compiled once per process (they are data in sources.yaml)."""
    return CSSSelector(css)


def select(root: lxml.html.HtmlElement, css: str) -> list[lxml.html.HtmlElement]:
    try:
        return selector(css)(root)
    except Exception:  # an invalid selector in configuration must not lose the page
        return []


def element_lines(element: lxml.html.HtmlElement, skip: lxml.html.HtmlElement | None = None,
                  keep_empty_cells: bool = False) -> list[str]:  # fmt: skip
    """The text of `element` as lines: block elements and table cells end lines, <br> too.

    `skip` leaves one subtree out (the body, when reading metadata). Empty cells become
    EMPTY_CELL lines when `keep_empty_cells`, since a label followed by an empty cell has
    no value (and must not take the next cell's).
    """
    parts: list[str] = []
    walker = etree.iterwalk(element, events=("start", "end"))
    for event, node in walker:
        tag = node.tag if isinstance(node.tag, str) else ""
        if node is skip and event == "start":
            walker.skip_subtree()
            parts.append("\n")
            continue
        if event == "start":
            if tag in BLOCK_TAGS or tag == "br":
                parts.append("\n")
            if node.text and tag != "br":
                parts.append(node.text)
            continue
        if tag in CELL_TAGS and keep_empty_cells:
            parts.append(EMPTY_CELL)
        if tag in BLOCK_TAGS:
            parts.append("\n")
        if node.tail and node is not element:
            parts.append(node.tail)
    return _to_lines("".join(parts), keep_empty_cells)


def _to_lines(text: str, keep_empty_cells: bool) -> list[str]:
    lines = []
    for raw in text.split("\n"):
        line = normalize_space(raw.replace(EMPTY_CELL, " ")) if raw.strip(EMPTY_CELL + " \t\r") else ""
        if line:
            lines.append(line)
        elif keep_empty_cells and EMPTY_CELL in raw:
            lines.append(EMPTY_CELL)
    return lines


def meta_content(root: lxml.html.HtmlElement, names: list[str]) -> str | None:
    """The content of the first <meta name=...> among `names` (case-insensitive)."""
    found = meta_tags(root)
    return next((found[n.lower()] for n in names if n.lower() in found), None)


def meta_tags(root: lxml.html.HtmlElement) -> dict[str, str]:
    """name (lowercased) → content of the page's <meta> tags, the first of each name; read once
    per tree (the tree object keeps it), since several fields ask."""
    cached = _META_CACHE.get(root)
    if cached is None:
        cached = {}
        for meta in root.iter("meta"):
            name = (meta.get("name") or meta.get("property") or "").strip().lower()
            content = normalize_space(meta.get("content") or "")
            if name and content:
                cached.setdefault(name, content)
        _META_CACHE[root] = cached
    return cached


_META_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
