"""Render pages from `SiteSpec`/`Article` through each site's Jinja2 templates, to bytes.

Templates live in `templates/<site.template>/` (`article.html`, `listing.html`, a `base.html`
they extend); `templates/_shared/` holds the home page, the national meta-tag macro, the
portal, robots.txt and the 404 page. Text is stored in the seeds' half-width form and made
full-width here, because that is how the real CMSs print Chinese prose.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from sample_site.model import Article, SiteSpec
from sample_site.urls import (
    article_href,
    article_id,
    jcms_page_href,
    listing_path,
    site_href,
)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# Only the ASCII punctuation NFKC folds back; "." "-" "%" "/" stay, as in numbers and 1.
_FULLWIDTH = str.maketrans({",": "，", ";": "；", ":": "：", "(": "（", ")": "）",
                            "!": "！", "?": "？"})  # fmt: skip


@dataclass(frozen=True)
class ListingLink:
    """One line of a column listing."""

    title: str
    href: str
    released: datetime


def to_page_text(text: str) -> str:
    """Half-width (NFKC) punctuation back to the full-width form Chinese pages print."""
    return text.translate(_FULLWIDTH)


def paragraph_markup(text: str) -> Markup:
    """Escaped full-width text; no-break spaces as &nbsp;, which GBK cannot encode raw."""
    return Markup(str(escape(to_page_text(text))).replace("\xa0", "&nbsp;"))


@lru_cache(maxsize=1)
def template_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a chrome key missing from site.yaml fails loudly
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["page_text"] = to_page_text
    env.filters["para"] = paragraph_markup
    return env


def render_article(site: SiteSpec, article: Article) -> bytes:
    """The article page, encoded in the site's charset."""
    art_id = article_id(article.path)  # for the view-counter script URL
    html = _render(site, "article.html", article.path, article=article, art_id=art_id)
    return encode_page(site, html)


def render_listing(site: SiteSpec, items: Sequence[Article], page_no: int, n_pages: int) -> bytes:
    """Listing page `page_no` of `n_pages` showing `items` (already sliced, newest first)."""
    if not 1 <= page_no <= n_pages:
        raise ValueError(f"page {page_no} outside 1..{n_pages}")
    links = [ListingLink(a.title, article_href(site, a), a.released) for a in items]
    html = _render(
        site,
        "listing.html",
        listing_path(site.column, page_no),
        items=links,
        page_no=page_no,
        n_pages=n_pages,
        pager=pager_hrefs(site, page_no, n_pages),
    )
    return encode_page(site, html)


def render_home(site: SiteSpec, latest: Sequence[Article]) -> bytes:
    """The site's home page, with `latest` linked in a 信息公开 block."""
    links = [ListingLink(a.title, a.path, a.released) for a in latest]
    html = _render(site, "home.html", f"{site.prefix}/index.html", items=links)
    return encode_page(site, html)


def render_portal(sites: Sequence[SiteSpec]) -> bytes:
    """`/`: a plain index of the sites on this server, for people opening the demo."""
    return template_env().get_template("_shared/portal.html").render(sites=sites).encode("utf-8")


def render_robots(sites: Sequence[SiteSpec]) -> bytes:
    """One robots.txt for the shared host, built from each site's `robots_disallow` list."""
    rules = [site.prefix + r for site in sites for r in site.chrome.get("robots_disallow", ())]
    return template_env().get_template("_shared/robots.txt").render(rules=rules).encode("utf-8")


def render_not_found() -> bytes:
    return template_env().get_template("_shared/404.html").render().encode("utf-8")


def pager_hrefs(site: SiteSpec, page_no: int, n_pages: int) -> dict[str, str]:
    """首页/上一页/下一页/尾页 targets; templates decide which are anchors (TRS uses none)."""
    column = site.column

    def href(n: int) -> str:
        if column.paging == "pageNum":
            return jcms_page_href(column, n)
        return posixpath.basename(listing_path(column, n))  # static exports link siblings

    return {
        "first": href(1),
        "prev": href(max(1, page_no - 1)),
        "next": href(min(n_pages, page_no + 1)),
        "last": href(n_pages),
    }


def encode_page(site: SiteSpec, html: str) -> bytes:
    """Strict on purpose: a character the site's charset lacks is a content error to fix."""
    return html.encode(site.charset)


def _render(site: SiteSpec, name: str, page_path: str, **context: object) -> str:
    # A site's own template wins; the home page is shared and only extends the site's base.
    env = template_env()
    template = env.select_template([f"{site.template}/{name}", f"_shared/{name}"])
    link = _link_maker(site, page_path)
    return template.render(
        site=site,
        column=site.column,
        chrome=site.chrome,
        link=link,
        url=lambda href: link(site_href(site, href)),
        base_template=f"{site.template}/base.html",
        **context,
    )


def _link_maker(site: SiteSpec, page_path: str) -> Callable[[str], str]:
    """How this page links a server path: TRS publishes relative links (../../), jcms root ones."""

    def link(target: str) -> str:
        if site.cms != "trs" or not target.startswith("/"):
            return target
        relative = posixpath.relpath(target, posixpath.dirname(page_path))
        return relative if relative.startswith(".") else "./" + relative

    return link
