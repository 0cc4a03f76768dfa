"""Assemble rendered pages into a `Corpus` (URL path → Resource), and write one to disk.

`build_corpus` works for any list of `SiteSpec`s, so a benchmark can generate thousands
of synthetic articles in the bundled templates and serve them with `SampleSiteServer`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from sample_site.content import load_sample_sites
from sample_site.model import Article, Corpus, Resource, SiteSpec
from sample_site.render import (
    render_article,
    render_home,
    render_listing,
    render_portal,
    render_robots,
)
from sample_site.urls import jcms_page_href, listing_path

logger = logging.getLogger(__name__)

HOME_LATEST = 6  # articles linked from a site's home page


def build_sample_corpus() -> Corpus:
    """Every page of the bundled sample sites."""
    return build_corpus(load_sample_sites())


def build_corpus(sites: Sequence[SiteSpec]) -> Corpus:
    corpus = Corpus()
    newest = max(a.released for site in sites for a in site.articles)
    corpus["/index.html"] = Resource(render_portal(sites), "text/html; charset=utf-8", newest)
    corpus["/robots.txt"] = Resource(render_robots(sites), "text/plain; charset=utf-8", newest)
    for site in sites:
        add_site(corpus, site)
    return corpus


def add_site(corpus: Corpus, site: SiteSpec) -> None:
    """Home page, every listing page and every article of one site."""
    add_listings(corpus, site)
    for article in site.articles:
        body = render_article(site, article)
        corpus[article.path] = Resource(body, site.content_type, article.released)


def add_listings(corpus: Corpus, site: SiteSpec) -> int:
    """Home page and every listing page of a site, newest first; returns the number of listing pages."""
    articles = newest_first(site.articles)
    updated = articles[0].released  # a CMS republishes its listings with each new article
    corpus[f"{site.prefix}/index.html"] = Resource(
        render_home(site, articles[:HOME_LATEST]), site.content_type, updated
    )
    pages = paginate(articles, site.column.per_page)
    for page_no, items in enumerate(pages, start=1):
        body = render_listing(site, items, page_no, len(pages))
        corpus[listing_path(site.column, page_no)] = Resource(body, site.content_type, updated)
    if site.column.paging == "pageNum":  # jcms pagers link page 1 with its query too
        corpus[jcms_page_href(site.column, 1)] = corpus[listing_path(site.column, 1)]
    return len(pages)


def newest_first(articles: Sequence[Article]) -> list[Article]:
    return sorted(articles, key=lambda a: (a.released, a.path), reverse=True)


def paginate(articles: Sequence[Article], per_page: int) -> list[list[Article]]:
    if per_page < 1:
        raise ValueError(f"per_page must be >= 1, got {per_page}")
    return [list(articles[i : i + per_page]) for i in range(0, len(articles), per_page)] or [[]]


def write_static(corpus: Corpus, outdir: Path) -> int:
    """Write each resource under `outdir`, keeping query strings in file names as wget does."""
    for path in corpus:
        target = outdir / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(corpus[path].body)
    logger.info("wrote %d files under %s", len(corpus), outdir)
    return len(corpus)
