"""The bundled sample site: five Chinese county/district government CMSs, served on loopback.

Real sites are out of reach offline, so the project ships imitations of the five sites its
seed reports came from (天台, 仙居, 冷水滩, 嵊州, 慈溪), each in its own CMS's markup, with the
seed report and synthetic neighbours in one column per site. The sample site knows nothing
of how it will be parsed.

API (all importable from `sample_site`):

    load_sample_sites() -> list[SiteSpec]                 # content/<site>/site.yaml + bodies
    render_article(site, article) -> bytes                # in the site's charset
    render_listing(site, items, page_no, n_pages) -> bytes
    article_path(site, released, art_id) -> str           # mint URLs in the site's shape
    listing_path(column, page_no) -> str
    build_sample_corpus() -> Corpus                       # URL path -> Resource
    build_corpus(sites) -> Corpus                         # the same for any SiteSpecs
    SampleSiteServer(corpus, host="127.0.0.1", port=0)    # context manager; .base_url

Command line:

    python -m sample_site serve [--host 127.0.0.1] [--port 8765]
    python -m sample_site build OUTDIR
"""

from sample_site.content import ContentError, load_sample_sites, load_site
from sample_site.corpus import add_site, build_corpus, build_sample_corpus, write_static
from sample_site.model import Article, ColumnSpec, Corpus, Resource, SiteSpec
from sample_site.render import render_article, render_home, render_listing
from sample_site.server import SampleSiteServer
from sample_site.urls import article_path, listing_path

__all__ = [
    "Article",
    "ColumnSpec",
    "ContentError",
    "Corpus",
    "Resource",
    "SampleSiteServer",
    "SiteSpec",
    "add_site",
    "article_path",
    "build_corpus",
    "build_sample_corpus",
    "listing_path",
    "load_sample_sites",
    "load_site",
    "render_article",
    "render_home",
    "render_listing",
    "write_static",
]
