"""Find report links on a site's column (listing) pages and follow the pagination.

`parse_listing` is pure: HTML in, a `ListingPage` out (article links, further listing
pages, the records the page declares, how it paginates). `listing_walk` is the walk over
a column's pages as a generator (it yields the URL it needs next and is sent the page's
HTML), so that a scheduler can interleave a thousand walks on a few threads;
`walk_listing` drives one through a callable. `plan_fetches` turns the crawl frontier
into downloads.

Which links are articles. A column lists its reports as repeated items (`<li>`, `<tr>`,
`<div>` …), each a link with a title and a date. An anchor belongs to an item when the
smallest element around it that shows a date (2024-03-08, 2024/3/8, 2024年3月8日) links to
at most MAX_TARGETS_PER_ITEM distinct pages; the item's link with the longest title is its
article. Items are grouped by their shape (the item's tag, its parent's tag and class) and
the largest group is the column's list: a menu, a footer or a lone dated link elsewhere
never is. No URL shape is assumed. `article_url_pattern`, where given, narrows this: the
dated items (of any group) whose URL matches it; on a page where no dated item matches,
every link that matches (the operator said what an article URL looks like).

Where links hide: plain anchors; 大汉 jcms records inside <script type="text/xml"><![CDATA[
… ]]></script>; list markup a template left inside an HTML comment (<!-- <li>… -->) for a
script to fill in.

How a listing paginates (`ListingPage.pagination`), in this order:
- "script (createPageHTML)": TRS `createPageHTML(count, index, "index", "html")` (index.html,
  index_1.html …) and the 6-argument `createPageHTML('page_div', count, current, 'name',
  'ext', records)` (name.ext, name_2.ext …);
- "static pages": 下一页-style links, `next_page_pattern`, and numbered or 首页/尾页 pager
  links to a sibling of the page (index_3.html, the same path with ?pageNum=3);
- "script (jcms)": a jcms datastore whose script declares totalRecord (and perPage):
  ?uid=<unit>&pageNum=<n>;
- "search API": a pager whose links lead nowhere (javascript:, #) or a jcms data proxy
  only: no further page can be read, which the run summary says;
- "none".
Declared records (`ListingPage.declared_records`): createPageHTML's total, a script's
recordCount/totalRecord, or the page's 共N条 / 找到约N条.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol
from urllib.parse import parse_qsl, urldefrag, urlencode, urljoin, urlsplit, urlunsplit

import lxml.html
from lxml import etree

from tasks import settings
from tasks.records import ListingLink, Source
from tasks.extract.text import fold, normalize_space

log = logging.getLogger(__name__)

NEXT_PAGE_TEXTS = ("下一页", "下页", "后页", "下一頁", ">", "›", "»", ">>")
# Pager links that are not "next" but name a page of the same sequence (followed only to a sibling URL).
PAGER_TEXTS = ("首页", "尾页", "末页", "最后一页", "上一页", "上页", "前页", "上一頁")
MAX_TARGETS_PER_ITEM = 3  # distinct links an item may hold (title, column tag, attachment); more is a container

# Pagination kinds, as ListingPage.pagination says them.
PAGINATED_BY_PAGER_SCRIPT = "script (createPageHTML)"
PAGINATED_BY_STATIC_PAGES = "static pages"
PAGINATED_BY_JCMS = "script (jcms)"
PAGINATED_BY_SEARCH_API = "search API"
NOT_PAGINATED = "none"

_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
_QUOTED = r"""['"]([^'"]+)['"]"""
# TRS: createPageHTML(pages, index, "index", "html"); index counts from 0.
_TRS_PAGER = re.compile(rf"createPageHTML\(\s*(\d+)\s*,\s*(\d+)\s*,\s*{_QUOTED}\s*,\s*{_QUOTED}\s*\)")
# The 6-argument form: createPageHTML('page_div', pages, current, 'name', 'ext', records); current counts from 1.
_PAGER_6 = re.compile(rf"createPageHTML\(\s*{_QUOTED}\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*{_QUOTED}\s*,\s*{_QUOTED}"
                      r"\s*,\s*(\d+)\s*\)")  # fmt: skip
_DATE = re.compile(r"((?:19|20)\d{2})\s*[-./年]\s*(\d{1,2})\s*[-./月]\s*(\d{1,2})")
_DECLARED_TEXT = re.compile(r"(?:共有?|总共|共计|合计|总计|找到约?)\s*(\d[\d,]*)\s*(?:条|篇)")
_DECLARED_SCRIPT = re.compile(r"(?:recordCount|totalRecord|totalCount|totalrecord|recordcount|total_count)"
                              r"""\s*["']?\s*[:=]\s*["']?(\d+)""")  # fmt: skip
_DECLARED_XML = re.compile(r"<totalrecord>\s*(\d+)\s*</totalrecord>", re.IGNORECASE)
_PER_PAGE = re.compile(r"""(?:perPage|perpage|pageSize|pagesize)\s*["']?\s*[:=]\s*["']?(\d+)""")
_JCMS_UNIT = re.compile(r"unitid=(\d+)")
_SIBLING_NAME = re.compile(r"^(?P<stem>.+?)(?:_\d+)?\.(?P<ext>s?html?|jsp|php|aspx?)$", re.IGNORECASE)
_UNFOLLOWABLE = ("javascript:", "#", "mailto:", "tel:")


@dataclass
class ListingPage:
    url: str
    links: list[ListingLink] = field(default_factory=list)
    next_pages: list[str] = field(default_factory=list)
    declared_records: int | None = None  # how many records the listing says it holds, where it says
    pagination: str = NOT_PAGINATED  # one of the PAGINATED_BY_* kinds, or NOT_PAGINATED


@dataclass
class Discovery:
    """What one walk over a source's listing read, found and left."""

    source: str
    links: list[ListingLink] = field(default_factory=list)  # unique, in listing order
    pages_read: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # listing pages that could not be read
    resumed: list[str] = field(default_factory=list)  # pages left by earlier runs, read in this one
    pages_left: list[str] = field(default_factory=list)  # queued, unread when the page budget ran out
    not_needed: list[str] = field(default_factory=list)  # queued, unread: the pages before held only known links
    empty_pages: list[str] = field(default_factory=list)  # read, and no article link on them
    declared_records: dict[str, int] = field(default_factory=dict)  # listing URL → records it declares
    unfollowable: list[str] = field(default_factory=list)  # pages paginated only through a search API
    listing_urls: list[str] = field(default_factory=list)  # where the walk started (the source's)
    new_links: int = 0  # links not known before this walk
    stopped_at_known: bool = False  # the pagination was cut where pages held only known links
    stop_reason: str = "nothing read"

    @property
    def urls(self) -> list[str]:
        return [link.url for link in self.links]

    @property
    def complete(self) -> bool:
        """Every page the listing led to was read, or was not needed (only known links before it)."""
        return not self.errors and not self.pages_left


# --- one listing page (pure) -------------------------------------------------------------------
def parse_listing(html: str, page_url: str, source: Source) -> ListingPage:
    root = lxml.html.document_fromstring(html or "<html></html>", base_url=page_url)
    base = _base_url(root, page_url)
    trees = [root, *_hidden_lists(root, base)]
    anchors = [(anchor, url) for tree in trees for anchor in tree.iter("a")
               if (url := _resolve(anchor.get("href"), base)) and _allowed(url, source)]  # fmt: skip
    page = ListingPage(url=page_url)
    static = [url for anchor, url in anchors if _is_pager_link(anchor, url, page_url, source)]
    scripts = _script_texts(root)
    scripted = _pager_script_pages(scripts, base, page_url)
    jcms = _jcms_pages(scripts, root, page_url)
    page.next_pages = [u for u in dict.fromkeys(scripted + static + jcms)
                       if _allowed(u, source) and _strip_fragment(u) != _strip_fragment(page_url)]  # fmt: skip
    pager_urls = set(static)
    items = _article_items([(a, u) for a, u in anchors if u not in pager_urls and not _same_page(u, page_url)],
                           source)  # fmt: skip
    page.links = [_link(anchor, url, item, page_url) for anchor, url, item in items]
    page.declared_records = _declared_records(scripts, root, [item for _, _, item in items])
    page.pagination = (PAGINATED_BY_PAGER_SCRIPT if scripted else PAGINATED_BY_STATIC_PAGES if static
                       else PAGINATED_BY_JCMS if jcms
                       else PAGINATED_BY_SEARCH_API if _has_dead_pager(root, scripts) else NOT_PAGINATED)  # fmt: skip
    return page


def _base_url(root: lxml.html.HtmlElement, page_url: str) -> str:
    base = root.find(".//base")
    return urljoin(page_url, base.get("href")) if base is not None and base.get("href") else page_url


def _hidden_lists(root: lxml.html.HtmlElement, base: str) -> Iterable[lxml.html.HtmlElement]:
    """Markup a script turns into the list: jcms CDATA records, and list items left in a comment."""
    for script in root.iter("script"):
        for fragment in _CDATA.findall(script.text or ""):
            if "<a" in fragment:
                yield lxml.html.fragment_fromstring(fragment, create_parent="div", base_url=base)
    for comment in root.iter(etree.Comment):
        text = comment.text or ""
        if "<a" in text and "href" in text:
            yield lxml.html.fragment_fromstring(text, create_parent="div", base_url=base)


def _script_texts(root: lxml.html.HtmlElement) -> list[str]:
    """Script bodies, and comments (templates comment pager calls out with the list they fill)."""
    return [el.text or "" for el in root.iter("script", etree.Comment)]


def _resolve(href: str | None, base: str) -> str | None:
    if not href or href.strip().lower().startswith(_UNFOLLOWABLE):
        return None
    return _strip_fragment(urljoin(base, href.strip()))


def _strip_fragment(url: str) -> str:
    return urldefrag(url)[0]


def _same_page(url: str, page_url: str) -> bool:
    return _strip_fragment(url) == _strip_fragment(page_url)


def _allowed(url: str, source: Source) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and (parts.hostname or "").lower() in source.allowed_hosts


def _anchor_text(anchor: lxml.html.HtmlElement) -> str:
    return normalize_space(fold(anchor.text_content()))


# --- pagination ---------------------------------------------------------------------------------
def _is_pager_link(anchor: lxml.html.HtmlElement, url: str, page_url: str, source: Source) -> bool:
    if source.next_page_pattern and re.search(source.next_page_pattern, url):
        return True
    text = _anchor_text(anchor)
    if text in NEXT_PAGE_TEXTS:
        return True
    return (text in PAGER_TEXTS or text.isdigit()) and _same_sequence(url, page_url)


def _same_sequence(url: str, page_url: str) -> bool:
    """Is `url` another page of the listing at `page_url`: the same path with another query
    (?pageNum=3), or a sibling file of the same stem (index_3.html beside index.html)?"""
    a, b = urlsplit(url), urlsplit(page_url)
    if (a.scheme, a.netloc) != (b.scheme, b.netloc):
        return False
    if a.path == b.path:
        return a.query != b.query
    directory, name = a.path.rsplit("/", 1)
    page_directory, page_name = b.path.rsplit("/", 1)
    mine, theirs = _SIBLING_NAME.match(name), _SIBLING_NAME.match(page_name or "index.html")
    return directory == page_directory and bool(mine and theirs) and (
        mine.group("stem"), mine.group("ext")) == (theirs.group("stem"), theirs.group("ext"))  # type: ignore[union-attr]


def _pager_script_pages(scripts: Sequence[str], base: str, page_url: str) -> list[str]:
    """The listing's other pages, from the TRS createPageHTML call (either form)."""
    pages: list[str] = []
    for text in scripts:
        for count, index, name, ext in _TRS_PAGER.findall(text):  # index 0 = name.ext, 1 = name_1.ext …
            pages += [urljoin(base, f"{name}.{ext}" if i == 0 else f"{name}_{i}.{ext}")
                      for i in range(int(count)) if i != int(index)]  # fmt: skip
        for _div, count, current, name, ext, _records in _PAGER_6.findall(text):  # page 1 = name.ext, 2 = name_2.ext …
            pages += [urljoin(base, f"{name}.{ext}" if n == 1 else f"{name}_{n}.{ext}")
                      for n in range(1, int(count) + 1) if n != int(current)]  # fmt: skip
    return [u for u in dict.fromkeys(pages) if not _same_page(u, page_url)]


def _jcms_pages(scripts: Sequence[str], root: lxml.html.HtmlElement, page_url: str) -> list[str]:
    """jcms: a datastore of records whose script declares the total → ?uid=<unit>&pageNum=<n>."""
    joined = "\n".join(scripts)
    if "<datastore>" not in joined:
        return []
    total = _first_int(_DECLARED_XML, joined) or _first_int(_DECLARED_SCRIPT, joined)
    unit = _first_int(_JCMS_UNIT, joined)
    if not total or not unit:
        return []
    per_page = _first_int(_PER_PAGE, joined) or max(1, joined.count("<record>"))
    parts = urlsplit(page_url)
    query = dict(parse_qsl(parts.query))
    current = int(query.get("pageNum", "1") or 1)
    pages = []
    for number in range(1, math.ceil(total / per_page) + 1):
        if number != current:
            new_query = urlencode(query | {"uid": str(unit), "pageNum": str(number)})
            pages.append(urlunsplit((parts.scheme, parts.netloc, parts.path, new_query, "")))
    return pages


def _has_dead_pager(root: lxml.html.HtmlElement, scripts: Sequence[str]) -> bool:
    """A 下一页 (or numbered pager) whose links lead nowhere, or only a jcms data proxy: the
    further pages come from a search API the crawler does not call."""
    dead = [a for a in root.iter("a") if (a.get("href") or "").strip().lower().startswith(_UNFOLLOWABLE)
            or not (a.get("href") or "").strip()]  # fmt: skip
    texts = {_anchor_text(a) for a in dead}
    if texts & set(NEXT_PAGE_TEXTS) or len({t for t in texts if t.isdigit()}) >= 3:
        return True
    return any("dataproxy" in text for text in scripts)


# --- articles -----------------------------------------------------------------------------------
def _article_items(anchors: list[tuple[lxml.html.HtmlElement, str]],
                   source: Source) -> list[tuple[lxml.html.HtmlElement, str, lxml.html.HtmlElement]]:  # fmt: skip
    """(anchor, url, item) of the page's article links, in page order, one per URL."""
    by_item: dict[lxml.html.HtmlElement, list[tuple[lxml.html.HtmlElement, str]]] = {}
    verdicts: dict[lxml.html.HtmlElement, bool | None] = {}  # shared by the anchors: they share ancestors
    for anchor, url in anchors:
        item = _dated_item(anchor, verdicts)
        if item is not None and _title(anchor):
            by_item.setdefault(item, []).append((anchor, url))
    items = [(*max(links, key=lambda pair: len(_title(pair[0]))), item) for item, links in by_item.items()]
    pattern = source.article_url_pattern
    if pattern:
        chosen = [entry for entry in items if re.search(pattern, entry[1])]
        if not chosen:  # no dated list on this page: the pattern alone says what an article is
            chosen = [(a, u, a) for a, u in anchors if re.search(pattern, u)]
    else:
        chosen = _largest_group(items)
    unique: dict[str, tuple[lxml.html.HtmlElement, str, lxml.html.HtmlElement]] = {}
    for entry in chosen:
        unique.setdefault(entry[1], entry)
    return list(unique.values())


def _dated_item(anchor: lxml.html.HtmlElement,
                verdicts: dict[lxml.html.HtmlElement, bool | None]) -> lxml.html.HtmlElement | None:  # fmt: skip
    """The smallest element around `anchor` that shows a date, unless it holds too many links.
    `verdicts` remembers what each element was found to be (the anchors of a page share their
    ancestors: checked once each, a listing of a hundred links parses in linear time)."""
    node: lxml.html.HtmlElement | None = anchor
    while node is not None and node.tag not in ("body", "html"):
        if node not in verdicts:
            verdicts[node] = False if _too_many_targets(node) else (True if _DATE.search(node.text_content()) else None)
        if verdicts[node] is not None:
            return node if verdicts[node] else None
        node = node.getparent()
    return None


def _too_many_targets(node: lxml.html.HtmlElement) -> bool:
    targets: set[str] = set()
    for anchor in node.iter("a"):
        href = (anchor.get("href") or "").strip()
        if href and not href.lower().startswith(_UNFOLLOWABLE):
            targets.add(href.partition("#")[0])  # the page it leads to; its fragment is no other page
            if len(targets) > MAX_TARGETS_PER_ITEM:
                return True
    return False


def _title(anchor: lxml.html.HtmlElement) -> str:
    return normalize_space(anchor.get("title") or anchor.text_content())


def _largest_group(items: list[tuple[lxml.html.HtmlElement, str, lxml.html.HtmlElement]]
                   ) -> list[tuple[lxml.html.HtmlElement, str, lxml.html.HtmlElement]]:  # fmt: skip
    """The items of the most frequent shape (item tag, parent tag and class), in page order."""
    groups: dict[tuple[str, str, str], list[tuple[lxml.html.HtmlElement, str, lxml.html.HtmlElement]]] = {}
    for entry in items:
        groups.setdefault(_shape(entry[2]), []).append(entry)
    return max(groups.values(), key=len) if groups else []


def _shape(item: lxml.html.HtmlElement) -> tuple[str, str, str]:
    parent = item.getparent()
    if parent is None:
        return (str(item.tag), "", "")
    return (str(item.tag), str(parent.tag), " ".join(sorted((parent.get("class") or "").split())))


def _link(anchor: lxml.html.HtmlElement, url: str, item: lxml.html.HtmlElement, page_url: str) -> ListingLink:
    title = _title(anchor) or None
    container = item if item is not anchor else anchor.getparent()
    listed = _DATE.search(container.text_content()) if container is not None else None
    listed_date = None
    if listed:
        try:
            listed_date = date(*map(int, listed.groups()))
        except ValueError:
            listed_date = None
    return ListingLink(url=url, title=title, listed_date=listed_date, listing_url=page_url)


# --- declared records ---------------------------------------------------------------------------
def _declared_records(scripts: Sequence[str], root: lxml.html.HtmlElement,
                      items: Sequence[lxml.html.HtmlElement]) -> int | None:  # fmt: skip
    """The total the listing states: the pager script's, a script variable, or 共N条 in its text
    (outside the list items, whose snippets may count other things)."""
    for text in scripts:
        if match := _PAGER_6.search(text):
            return int(match.group(6))
    joined = "\n".join(scripts)
    script_total = _first_int(_DECLARED_XML, joined) or _first_int(_DECLARED_SCRIPT, joined)
    if script_total:
        return script_total
    match = _DECLARED_TEXT.search(_visible_text(root, skip=set(items)))
    return int(match.group(1).replace(",", "")) if match else None


def _visible_text(node: lxml.html.HtmlElement, skip: set[lxml.html.HtmlElement]) -> str:
    parts: list[str] = []

    def walk(element: lxml.html.HtmlElement) -> None:
        if element in skip or not isinstance(element.tag, str) or element.tag in ("script", "style"):
            return
        parts.append(element.text or "")
        for child in element:
            walk(child)
            parts.append(child.tail or "")

    walk(node)
    return normalize_space(fold("".join(parts)))


def _first_int(pattern: re.Pattern[str], text: str) -> int | None:
    match = pattern.search(text)
    return int(match.group(1)) if match else None


# --- what to download -------------------------------------------------------------------------
class Validators(Protocol):
    """What a conditional GET needs of an archived page (the archive's PageState has it)."""

    @property
    def url(self) -> str: ...

    @property
    def etag(self) -> str | None: ...

    @property
    def last_modified(self) -> str | None: ...


@dataclass(frozen=True)
class FetchItem:
    url: str
    etag: str | None = None  # validators for a conditional GET of a known page
    last_modified: str | None = None


def plan_fetches(frontier_due: Iterable[str], revalidate: Iterable[Validators],
                 validators: Mapping[str, Validators] | None = None) -> list[FetchItem]:  # fmt: skip
    """The frontier's due links first, in its order (links earlier runs left pending, then this
    run's new ones, then failures and gone pages whose re-check is due), each with the
    validators of its last body where there is one; then known pages whose re-check is due
    (so an unchanged page costs a 304)."""
    known = validators or {}
    items = []
    for url in dict.fromkeys(frontier_due):
        state = known.get(url)
        items.append(FetchItem(url, state.etag, state.last_modified) if state else FetchItem(url))
    planned = {item.url for item in items}
    items += [FetchItem(s.url, s.etag, s.last_modified) for s in revalidate if s.url not in planned]
    return items


# --- walking the pagination (the I/O is the caller's) ---------------------------------------------
Walk = Generator[str, str | None, Discovery]  # yields a URL to read, is sent its HTML (None: unreadable)


def walk_listing(source: Source, read_page: Callable[[str], str | None], known: set[str],
                 max_pages: int | None = None, stop_after_known_pages: int | None = None, *,
                 resume: Sequence[str] = (), stop_when_known: bool = True, skip: frozenset[str] = frozenset(),
                 on_page: Callable[[ListingPage], None] | None = None) -> Discovery:  # fmt: skip
    """`listing_walk`, reading each page with `read_page(url)` (decoded HTML, or None when
    the page could not be read and the caller has recorded why)."""
    walk = listing_walk(source, known, max_pages, stop_after_known_pages, resume=resume,
                        stop_when_known=stop_when_known, skip=skip, on_page=on_page)  # fmt: skip
    try:
        url = next(walk)
        while True:
            url = walk.send(read_page(url))
    except StopIteration as done:
        return done.value


def listing_walk(
    source: Source,
    known: set[str],
    max_pages: int | None = None,
    stop_after_known_pages: int | None = None,
    *,
    resume: Sequence[str] = (),
    stop_when_known: bool = True,
    skip: frozenset[str] = frozenset(),
    on_page: Callable[[ListingPage], None] | None = None,
) -> Walk:
    """Read listing pages breadth-first: first the pages earlier runs left (`resume`: queued
    but unread, or failed) to the end of their pagination, then the source's listing URLs.

    Yields each URL to read and is sent its decoded HTML, or None when the page could not
    be read (the caller has recorded why); returns the Discovery. From the listing URLs,
    pagination stops after `stop_after_known_pages` consecutive pages with no unknown link
    (listings are newest first, so what follows is known too), if `stop_when_known`: the
    caller allows that once an earlier walk has finished, since what any walk left unread or
    could not read is then among the resumed pages. At most `max_pages` pages are requested,
    but always the listing URLs and one resumed page; what is left unread is in
    `pages_left`. `on_page` sees each page as soon as it is parsed (the caller records its
    links then: an interrupted walk loses nothing it read). Pages in `skip` (gone, waiting
    for their re-check) are not requested unless they are listing URLs.
    """
    budget = max_pages or source.max_listing_pages or settings.MAX_LISTING_PAGES
    stop_after = stop_after_known_pages or settings.STOP_AFTER_KNOWN_PAGES
    starts = list(dict.fromkeys(source.listing_urls))
    discovery = Discovery(source=source.name, listing_urls=starts)
    walk = _Walk(source, known, discovery, skip, on_page)
    walk.queued.update(starts)  # the listing URLs are the head walk's: a resumed page linking 首页 does not queue them
    resume = [url for url in dict.fromkeys(resume) if url not in skip and url not in starts]
    if resume:
        yield from walk.run(resume, budget=max(1, budget - len(starts)), stop_after=None)
        discovery.resumed = [url for url in resume if url in walk.requested]
    yield from walk.run(starts, budget=max(len(starts), budget - len(walk.requested)),
                        stop_after=stop_after if stop_when_known else None, first=True)  # fmt: skip
    discovery.stop_reason = _stop_reason(discovery, budget, stop_after)
    return discovery


class _Walk:
    """The breadth-first reading shared by the resumed pages and the listing URLs."""

    def __init__(self, source: Source, known: set[str], discovery: Discovery, skip: frozenset[str],
                 on_page: Callable[[ListingPage], None] | None) -> None:  # fmt: skip
        self.source, self.known, self.discovery = source, known, discovery
        self.skip, self.on_page = skip, on_page
        self.queued: set[str] = set()
        self.requested: list[str] = []
        self.seen_links: set[str] = set()

    def run(self, start: list[str], budget: int, stop_after: int | None,
            first: bool = False) -> Generator[str, str | None, None]:  # fmt: skip
        """Read from `start` (`first`: even if queued already) until the queue is empty, `budget`
        pages were requested, or (with `stop_after`) that many pages in a row held no unknown
        link; note what is left."""
        queue = list(start) if first else [url for url in start if url not in self.queued]
        self.queued.update(queue)
        requested = known_streak = 0
        while queue:
            if stop_after is not None and known_streak >= stop_after:
                self.discovery.not_needed += queue
                self.discovery.stopped_at_known = True
                return
            if requested >= budget:
                self.discovery.pages_left += queue
                return
            url = queue.pop(0)
            requested += 1
            self.requested.append(url)
            read = self._take(url, (yield url))
            if read is None:
                continue
            page, fresh = read
            if fresh:  # a page repeating links already read this run (首页 = page 1) says nothing
                known_streak = 0 if any(link.url not in self.known for link in fresh) else known_streak + 1
            for next_url in page.next_pages:
                if next_url not in self.queued and next_url not in self.skip:
                    self.queued.add(next_url)
                    queue.append(next_url)

    def _take(self, url: str, html: str | None) -> tuple[ListingPage, list[ListingLink]] | None:
        """Parse one page read (None: unreadable); note what it holds. Returns it with its
        links not seen earlier in this walk, or None if it could not be read."""
        if html is None:
            self.discovery.errors.append(url)
            return None
        self.discovery.pages_read.append(url)
        page = parse_listing(html, url, self.source)
        if self.on_page is not None:
            self.on_page(page)
        fresh = [link for link in page.links if link.url not in self.seen_links]
        self.discovery.links += fresh
        self.discovery.new_links += sum(1 for link in fresh if link.url not in self.known)
        self.seen_links.update(link.url for link in fresh)
        if not page.links:
            self.discovery.empty_pages.append(url)
        if page.declared_records is not None:
            self.discovery.declared_records.setdefault(url, page.declared_records)
        if page.pagination == PAGINATED_BY_SEARCH_API:
            self.discovery.unfollowable.append(url)
        return page, fresh


def _stop_reason(discovery: Discovery, budget: int, stop_after: int) -> str:
    if discovery.pages_left:
        return (f"stopped after {len(discovery.pages_read) + len(discovery.errors)} listing pages "
                f"(max_listing_pages {budget}); {len(discovery.pages_left)} left, the next run continues at "
                f"{discovery.pages_left[0]}")  # fmt: skip
    if discovery.errors:
        return f"{len(discovery.errors)} listing page(s) could not be read; the next run reads them again"
    if discovery.stopped_at_known:
        return f"stopped after {stop_after} listing page(s) holding only known links"
    return "read to the end of the pagination" if discovery.pages_read else "nothing read"


# --- what the run summary says about a walk (pure) -------------------------------------------------
def describe_discovery(discovery: Discovery) -> str:
    """One line for the log and the summary: pages read, links found, why it stopped."""
    resumed = f" ({len(discovery.resumed)} left by an earlier run)" if discovery.resumed else ""
    return (f"{len(discovery.pages_read)} listing page(s) read{resumed}, {len(discovery.links)} article links "
            f"({discovery.new_links} new); {discovery.stop_reason}")  # fmt: skip


def discovery_warnings(discovery: Discovery, links_known: int) -> list[str]:
    """What an operator should look at: empty listing pages, records declared but not found,
    pagination the crawler cannot follow, a page budget that bit. `links_known` is how many
    article links of the source the frontier holds (all runs)."""
    warnings = [f"listing page {url} yields no article link (set article_url_pattern if its links are not "
                f"dated list items)" for url in discovery.empty_pages]  # fmt: skip
    warnings += [f"listing page {url} is paginated only through a search API: its further pages cannot be read"
                 for url in discovery.unfollowable]  # fmt: skip
    if discovery.pages_left:
        warnings.append(discovery.stop_reason)
    declared = sum(discovery.declared_records.get(url, 0) for url in discovery.listing_urls)
    if discovery.complete and declared > links_known:
        warnings.append(f"the listing declares {declared} records; {links_known} article links found")
    return warnings
