"""Strip the site chrome: find the article body and return its paragraphs.

Container first (the source's selectors, then common CMS selectors, then a text-density
fallback), chrome elements inside it next (share/print widgets, related links, pagers),
then line rules (widget lines, page-info lines, a title repeated at the top, a cover or
signature block of org names and dates). All rules are data in config/page.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import lxml.html

from tasks.page import BLOCK_TAGS, element_lines, select
from tasks.text import fold
from tasks.vocab import page_rules


@dataclass
class Body:
    paragraphs: list[str]
    container: lxml.html.HtmlElement | None
    method: str  # source_selector | cms_selector | density | page
    warnings: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def _rules() -> dict:
    rules = page_rules()
    return {
        "chrome_lines": [re.compile(p) for p in rules["chrome_line_patterns"]],
        "markers": tuple(rules["chrome_markers"]),
        "marker_max": int(rules["chrome_marker_max_line"]),
        "class_words": tuple(rules["chrome_class_words"]),
        "org": re.compile(rules["signature_org_pattern"]),
        "date": re.compile(rules["signature_date_pattern"]),
        "cover_max": int(rules["cover_max_line"]),
        "min_chars": int(rules["min_body_chars"]),
    }


def locate_body(root: lxml.html.HtmlElement, body_selectors: tuple[str, ...] = ()) -> Body:
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
    remove_chrome_elements(body.container)
    body.paragraphs = clean_lines(element_lines(body.container), title)
    if not body.paragraphs:
        body.warnings.append("the body is empty after cleaning")
    return body


# --- the container ------------------------------------------------------------------------
def find_container(root: lxml.html.HtmlElement, body_selectors: tuple[str, ...]) -> tuple[lxml.html.HtmlElement | None, str]:
    for method, selectors in (("source_selector", body_selectors), ("cms_selector", page_rules()["body_selectors"])):
        for css in selectors:
            candidates = [e for e in select(root, css) if _text_length(e) >= _rules()["min_chars"]]
            if candidates:
                return max(candidates, key=_text_length), method
    best = densest_block(root)
    return (best, "density") if best is not None else (None, "page")


def _text_length(element: lxml.html.HtmlElement) -> int:
    return len(re.sub(r"\s+", "", element.text_content()))


def densest_block(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    """Readability-style scoring: each text block scores its length minus twice its link
    text; the score goes to its parent and half of it to its grandparent."""
    scores: dict[lxml.html.HtmlElement, float] = {}
    for element in root.iter("p", "div", "td", "li", "section", "article", "font", "span"):
        if any(isinstance(c.tag, str) and c.tag in BLOCK_TAGS for c in element):
            continue  # score leaf blocks only; containers collect from them
        text = re.sub(r"\s+", "", element.text_content())
        if len(text) < 20:
            continue
        links = sum(len(re.sub(r"\s+", "", a.text_content())) for a in element.iter("a"))
        score = len(text) - 2 * links
        if score <= 0:
            continue
        parent = element.getparent()
        for ancestor, share in ((parent, 1.0), (parent.getparent() if parent is not None else None, 0.5)):
            if ancestor is not None and ancestor.tag not in ("body", "html"):
                scores[ancestor] = scores.get(ancestor, 0.0) + share * score
    if not scores:
        return None
    best = max(scores, key=scores.get)
    return best if scores[best] >= _rules()["min_chars"] else None


def remove_chrome_elements(container: lxml.html.HtmlElement) -> None:
    """Drop share/print/related/pager widgets inside the body (by class or id)."""
    words = _rules()["class_words"]
    for element in list(container.iterdescendants()):
        if not isinstance(element.tag, str) or element.getparent() is None:
            continue
        tokens = f"{element.get('class', '')} {element.get('id', '')}".lower().split()
        if any(word in token for token in tokens for word in words):
            element.drop_tree()


# --- the lines --------------------------------------------------------------------------------
def clean_lines(lines: list[str], title: str | None = None) -> list[str]:
    """Body paragraphs from container lines: chrome lines out, title repeat and cover block off."""
    kept = [line for line in lines if not is_chrome_line(line)]
    kept = strip_title_repeat(kept, title)
    kept = strip_cover_block(kept)
    return strip_signature(kept)


def is_chrome_line(line: str) -> bool:
    folded = fold(line).strip()
    if any(p.search(folded) for p in _rules()["chrome_lines"]):
        return True
    return len(folded) <= _rules()["marker_max"] and any(m in line or m in folded for m in _rules()["markers"])


def _squash(text: str) -> str:
    return re.sub(r"[\s\u3000]+", "", fold(text))


def strip_title_repeat(lines: list[str], title: str | None) -> list[str]:
    """The title shown again at the top of the body, possibly over several lines."""
    if not title or not lines:
        return lines
    target, joined = _squash(title), ""
    for count, line in enumerate(lines[:4], start=1):
        joined += _squash(line)
        if joined == target:
            return lines[count:]
        if not target.startswith(joined):
            break
    return lines


def _is_cover_line(line: str) -> bool:
    squashed = _squash(line)
    return bool(_rules()["org"].match(squashed) or _rules()["date"].match(squashed))


def strip_cover_block(lines: list[str]) -> list[str]:
    """Short lines before the text that carry an org name or a date (a cover or signature)."""
    end = 0
    while end < len(lines) and len(lines[end]) <= _rules()["cover_max"] and not re.search(r"[。；;]", lines[end]):
        end += 1
    block = lines[:end]
    if end < len(lines) and any(_is_cover_line(line) for line in block):
        return lines[end:]
    return lines


def strip_signature(lines: list[str]) -> list[str]:
    """A closing signature: the issuing body and/or a date on the last short lines."""
    end = len(lines)
    while end > 0 and _is_cover_line(lines[end - 1]):
        end -= 1
    return lines[:end] if end else lines
