"""URL shapes of the two CMS families, as the real sites use them.

Kept apart from rendering so that generators of synthetic corpora can mint article and
listing URLs that match the patterns in sources.yaml without rendering anything.
"""

from __future__ import annotations

from datetime import datetime

from sample_site.model import Article, ColumnSpec, SiteSpec


def listing_path(column: ColumnSpec, page_no: int) -> str:
    """Path (with query, for jcms) of listing page `page_no` (1-based)."""
    if page_no < 1:
        raise ValueError(f"page numbers start at 1, got {page_no}")
    if page_no == 1:
        return column.path
    if column.paging == "pageNum":
        return f"{column.path}?uid={column.uid}&pageNum={page_no}"
    if column.paging == "trs":  # TRS numbers the second page index_1
        return f"{column.directory}index_{page_no - 1}.html"
    return f"{column.directory}index_{page_no}.html"


def jcms_page_href(column: ColumnSpec, page_no: int) -> str:
    """jcms pager anchors always carry the query, page 1 included (as 首页 does on real sites)."""
    return f"{column.path}?uid={column.uid}&pageNum={page_no}"


def article_path(site: SiteSpec, released: datetime, art_id: int | str) -> str:
    """Mint the URL path of a new article released at `released`."""
    if site.cms == "trs":
        return f"{site.column.directory}{released:%Y%m}/t{released:%Y%m%d}_{art_id}.html"
    day = f"{released.year}/{released.month}/{released.day}"  # jcms drops leading zeros
    return f"{site.prefix}/art/{day}/art_{site.column.id}_{art_id}.html"


def article_id(path: str) -> str:
    """The CMS's numeric id: the last "_"-separated part of the file name, in both families."""
    return path.rsplit("_", 1)[-1].removesuffix(".html")


def article_href(site: SiteSpec, article: Article) -> str:
    """The href a listing page uses: TRS links relative to the column, jcms from the root."""
    directory = site.column.directory
    if site.cms == "trs" and article.path.startswith(directory):
        return "./" + article.path[len(directory) :]
    return article.path


def site_href(site: SiteSpec, href: str) -> str:
    """Chrome links in content files are site-relative so a spec can move to another prefix."""
    if href.startswith(("http://", "https://", "javascript:", "#", "mailto:")):
        return href
    return site.prefix + href
