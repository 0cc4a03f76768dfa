"""Find report links on a site's column (listing) pages and follow the pagination.

`parse_listing` is pure: HTML in, article links and further listing pages out. It reads
links wherever CMSs put them: plain anchors, 大汉 jcms records inside
<script type="text/xml"><![CDATA[ … ]]></script>, and TRS `createPageHTML(n, i, "index",
"html")` pagination scripts. `walk_listing` drives it over the network through a
callable, stopping once it reaches pages holding only links it already knows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html

from tasks import settings
from tasks.records import ListingLink, Source
from tasks.extract.text import fold, normalize_space

log = logging.getLogger(__name__)

NEXT_PAGE_TEXTS = ("下一页", "下页", "后页", "下一頁", ">", "›", "»", ">>")
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
_TRS_PAGER = re.compile(r"createPageHTML\(\s*(\d+)\s*,\s*(\d+)\s*,\s*['\"]([^'\"]+)['\"]\s*,\s*['\"]([^'\"]+)['\"]")
_DATE = re.compile(r"((?:19|20)\d{2})[-./年](\d{1,2})[-./月](\d{1,2})")
_ARTICLE_GUESS = re.compile(r"\d{4,}.*\.s?html?$")


@dataclass
class ListingPage:
    url: str
    links: list[ListingLink] = field(default_factory=list)
    next_pages: list[str] = field(default_factory=list)


@dataclass
class Discovery:
    source: str
    links: list[ListingLink] = field(default_factory=list)  # unique, in listing order
    pages_read: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # listing pages that could not be read

    @property
    def urls(self) -> list[str]:
        return [link.url for link in self.links]


# --- one listing page (pure) -------------------------------------------------------------------
def parse_listing(html: str, page_url: str, source: Source) -> ListingPage:
    root = lxml.html.document_fromstring(html or "<html></html>", base_url=page_url)
    base = _base_url(root, page_url)
    anchors = list(root.iter("a")) + list(_cdata_anchors(root, base))
    page = ListingPage(url=page_url)
    seen: set[str] = set()
    for anchor in anchors:
        url = _resolve(anchor.get("href"), base)
        if not url or url in seen or not _allowed(url, source):
            continue
        if _is_next_page(anchor, url, source):
            seen.add(url)
            page.next_pages.append(url)
        elif _is_article(url, page_url, source):
            seen.add(url)
            page.links.append(_link(anchor, url, page_url))
    page.next_pages += [u for u in _trs_pages(root, base) if u not in seen and _allowed(u, source)]
    page.next_pages = [u for u in dict.fromkeys(page.next_pages) if _strip_fragment(u) != _strip_fragment(page_url)]
    return page


def _base_url(root: lxml.html.HtmlElement, page_url: str) -> str:
    base = root.find(".//base")
    return urljoin(page_url, base.get("href")) if base is not None and base.get("href") else page_url


def _cdata_anchors(root: lxml.html.HtmlElement, base: str) -> Iterable[lxml.html.HtmlElement]:
    """Anchors inside jcms datastore records, which live in script CDATA sections."""
    for script in root.iter("script"):
        for fragment in _CDATA.findall(script.text or ""):
            if "<a" in fragment:
                holder = lxml.html.fragment_fromstring(fragment, create_parent="div", base_url=base)
                yield from holder.iter("a")


def _trs_pages(root: lxml.html.HtmlElement, base: str) -> list[str]:
    """TRS: createPageHTML(3, 0, "index", "html") → index.html, index_1.html, index_2.html."""
    pages: list[str] = []
    for script in root.iter("script"):
        for total, _current, name, ext in _TRS_PAGER.findall(script.text or ""):
            pages += [urljoin(base, f"{name}.{ext}" if i == 0 else f"{name}_{i}.{ext}") for i in range(int(total))]
    return pages


def _resolve(href: str | None, base: str) -> str | None:
    if not href or href.strip().lower().startswith(("javascript:", "mailto:", "tel:", "#")):
        return None
    return _strip_fragment(urljoin(base, href.strip()))


def _strip_fragment(url: str) -> str:
    return urldefrag(url)[0]


def _allowed(url: str, source: Source) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and (parts.hostname or "").lower() in source.allowed_hosts


def _is_next_page(anchor: lxml.html.HtmlElement, url: str, source: Source) -> bool:
    if source.next_page_pattern and re.search(source.next_page_pattern, url):
        return True
    text = normalize_space(fold(anchor.text_content()))
    return text in NEXT_PAGE_TEXTS


def _is_article(url: str, page_url: str, source: Source) -> bool:
    if _strip_fragment(url) == _strip_fragment(page_url):
        return False
    if source.article_url_pattern:
        return re.search(source.article_url_pattern, url) is not None
    return _ARTICLE_GUESS.search(urlsplit(url).path) is not None


def _link(anchor: lxml.html.HtmlElement, url: str, page_url: str) -> ListingLink:
    title = normalize_space(anchor.get("title") or anchor.text_content()) or None
    container = anchor.getparent()
    listed = _DATE.search(container.text_content()) if container is not None else None
    listed_date = None
    if listed:
        try:
            listed_date = date(*map(int, listed.groups()))
        except ValueError:
            listed_date = None
    return ListingLink(url=url, title=title, listed_date=listed_date, listing_url=page_url)


# --- what to download -------------------------------------------------------------------------
@dataclass(frozen=True)
class FetchItem:
    url: str
    etag: str | None = None  # validators for a conditional GET of a known page
    last_modified: str | None = None


def plan_fetches(discovered: list[str], known: set[str], due: Iterable) -> list[FetchItem]:
    """Unknown links first (new reports), then known pages whose re-check is due (with
    their validators, so an unchanged page costs a 304)."""
    items = [FetchItem(url) for url in dict.fromkeys(discovered) if url not in known]
    planned = {item.url for item in items}
    items += [FetchItem(s.url, s.etag, s.last_modified) for s in due if s.url not in planned]
    return items


# --- walking the pagination (I/O through a callable) ---------------------------------------------
def walk_listing(
    source: Source,
    read_page: Callable[[str], str | None],
    known: set[str],
    max_pages: int | None = None,
    stop_after_known_pages: int | None = None,
) -> Discovery:
    """Read listing pages breadth-first from the source's listing URLs.

    `read_page(url)` returns decoded HTML, or None when the page could not be read (the
    caller has logged why). Pagination stops after `stop_after_known_pages` consecutive
    pages with no unknown link: listings are newest first, so what follows is known too.
    """
    max_pages = max_pages or source.max_listing_pages or settings.MAX_LISTING_PAGES
    stop_after = stop_after_known_pages or settings.STOP_AFTER_KNOWN_PAGES
    discovery = Discovery(source=source.name)
    queue, queued = list(source.listing_urls), set(source.listing_urls)
    seen_links: set[str] = set()
    known_streak = 0
    while queue and len(discovery.pages_read) < max_pages and known_streak < stop_after:
        url = queue.pop(0)
        html = read_page(url)
        if html is None:
            discovery.errors.append(url)
            continue
        discovery.pages_read.append(url)
        page = parse_listing(html, url, source)
        fresh = [link for link in page.links if link.url not in seen_links]
        discovery.links += fresh
        seen_links.update(link.url for link in fresh)
        if fresh:  # a page repeating links already read this run (首页 = page 1) says nothing
            known_streak = 0 if any(link.url not in known for link in fresh) else known_streak + 1
        for next_url in page.next_pages:
            if next_url not in queued:
                queued.add(next_url)
                queue.append(next_url)
    if queue and len(discovery.pages_read) >= max_pages:
        log.warning("%s: stopped after %d listing pages (max_listing_pages)", source.name, max_pages)
    return discovery
