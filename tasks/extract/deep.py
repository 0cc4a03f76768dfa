"""Pages nested deeper than libxml2 will go, read with a second parser (lexbor).

libxml2 stops at 2048 levels of nesting even with XML_PARSE_HUGE, and drops the rest of
the page (a CMS that wraps every paragraph in one more <div> reaches it). lexbor, the
HTML5 parser under selectolax, has no such limit: the page is parsed again with it and
written back as HTML whose nesting is capped at MAX_DEPTH: deeper elements lose their
tags but keep their text, block elements their line breaks. libxml2 then reads that.
"""

from __future__ import annotations

import html as html_escape

from selectolax.lexbor import LexborHTMLParser, LexborNode

MAX_DEPTH = 500  # levels kept as elements; deeper ones are flattened into their ancestor
_BLOCKS = frozenset("p div section article li ul ol table tr td th h1 h2 h3 h4 h5 h6 br hr dd dt dl blockquote pre".split())
_SKIPPED = frozenset({"script", "style", "noscript", "template", "-comment"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input"})


def flatten_deep_html(html: str, max_depth: int = MAX_DEPTH) -> str:
    """The page as HTML nested at most `max_depth` levels, same text and line breaks."""
    tree = LexborHTMLParser(html)
    out: list[str] = []
    root = tree.root
    if root is not None:
        _write(root, 0, max_depth, out)
    return "".join(out)


def _write(start: LexborNode, depth: int, max_depth: int, out: list[str]) -> None:
    # an explicit stack: recursion would hit Python's own limit on exactly these pages
    stack: list[tuple[LexborNode, int, bool]] = [(start, depth, False)]
    while stack:
        node, level, closing = stack.pop()
        tag = node.tag or ""
        if closing:
            if level <= max_depth and tag not in _VOID:
                out.append(f"</{tag}>")
            elif tag in _BLOCKS:
                out.append("<br>")
            continue
        if tag == "-text":
            out.append(html_escape.escape(node.text(deep=False) or "", quote=False))
            continue
        if tag in _SKIPPED or tag.startswith("-") and tag != "-document":
            continue
        if tag != "-document":
            if level <= max_depth:
                attributes = "".join(f' {k}="{html_escape.escape(v or "")}"' for k, v in node.attributes.items())
                out.append(f"<{tag}{attributes}>")
            elif tag in _BLOCKS:
                out.append("<br>")
            stack.append((node, level, True))
        children = []
        child = node.child
        while child is not None:
            children.append(child)
            child = child.next
        stack.extend((child, level + 1, False) for child in reversed(children))
