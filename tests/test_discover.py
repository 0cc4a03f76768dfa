"""Discovery: article links and pagination from listing pages, and how a walk reads them.

Real listing pages (../shared/real_pages/html) are read at their gold's assumed_url with no
article_url_pattern and must give the gold's articles, next pages and declared records.
The small cases below pin each rule on markup written here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tasks.crawl.discover import (NOT_PAGINATED, PAGINATED_BY_JCMS, PAGINATED_BY_PAGER_SCRIPT,
                                  PAGINATED_BY_SEARCH_API, PAGINATED_BY_STATIC_PAGES, Discovery, FetchItem,
                                  discovery_warnings, parse_listing, plan_fetches, walk_listing)  # fmt: skip
from tasks.crawl.encoding import decode_html
from tasks.settings import PROJECT_ROOT
from tasks.sources import parse_source

SOURCE = parse_source({
    "name": "t", "region": "某县", "listing_urls": ["http://127.0.0.1:9/col/col1/index.html"],
    "article_url_pattern": r"/art/\d{4}/\d{1,2}/\d{1,2}/art_\d+_\d+\.html$",
    "next_page_pattern": r"/col/col1/index\.html\?.*pageNum=\d+",
})  # fmt: skip
PAGE = "http://127.0.0.1:9/col/col1/index.html"
BARE = parse_source({"name": "bare", "region": "某县", "listing_urls": [PAGE]})  # name, region, listing_urls only

SHARED_DIR = Path(os.environ.get("GOVETL_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
REAL_HTML = SHARED_DIR / "real_pages" / "html"
LISTING_GOLD = PROJECT_ROOT / "evaluation" / "real_pages" / "html"
REAL_LISTINGS = ("001", "002", "010", "016")


def items(*rows: tuple[str, str, str]) -> str:
    """A column list: one <li> per (href, title, date)."""
    return "<ul class='list'>" + "".join(f'<li><a href="{h}">{t}</a><span>{d}</span></li>' for h, t, d in rows) + "</ul>"


NAV = """<div class="nav"><ul><li><a href="/index.html">首页</a></li><li><a href="/col/col2/index.html">政策文件</a></li>
<li><a href="/col/col3/index.html">机构职能</a></li><li><a href="/col/col4/index.html">计划总结</a></li></ul></div>"""


# --- real listing pages against their gold ----------------------------------------------------
@pytest.mark.parametrize("number", REAL_LISTINGS)
def test_real_listing_gives_the_gold_articles_next_pages_and_declared_records(number):
    gold_path, page_path = LISTING_GOLD / f"{number}.json", REAL_HTML / f"{number}.html"
    if not gold_path.exists() or not page_path.exists():
        pytest.skip(f"{gold_path.name} or {page_path} is not there (../shared/real_pages beside the repository)")
    gold = json.loads(gold_path.read_text(encoding="utf-8"))
    named = [gold["assumed_url"], *gold["articles"], *gold["not_articles"], *gold["next_pages"]]
    # Every host the gold names is allowed: the host filter must not be what keeps a link out.
    source = parse_source({"name": f"real-{number}", "region": "某地", "listing_urls": [gold["assumed_url"]],
                           "allowed_hosts": sorted({urlsplit(u).hostname for u in named if urlsplit(u).hostname})})
    html = decode_html(page_path.read_bytes(), "text/html").text

    page = parse_listing(html, gold["assumed_url"], source)

    found = [link.url for link in page.links]
    assert found == gold["articles"]
    assert not set(found) & set(gold["not_articles"])
    assert page.next_pages == gold["next_pages"]
    assert page.declared_records == gold["declared_records"]
    assert page.pagination == gold["paginated_by"]
    assert all(link.title and link.listed_date for link in page.links)


# --- which links are articles ---------------------------------------------------------------
def test_dated_list_items_are_articles_whatever_their_urls_and_menus_are_not():
    html = NAV + items(("/news/a.html", "县民政局2023年工作总结", "2024-01-05"),
                       ("/news/b.html", "县民政局2024年工作要点", "2024/2/6"),
                       ("/x?id=7", "关于社会组织年检的公告", "2024年3月8日"))
    page = parse_listing(html, PAGE, BARE)
    assert [link.url for link in page.links] == ["http://127.0.0.1:9/news/a.html", "http://127.0.0.1:9/news/b.html",
                                                 "http://127.0.0.1:9/x?id=7"]  # fmt: skip
    assert [str(link.listed_date) for link in page.links] == ["2024-01-05", "2024-02-06", "2024-03-08"]
    assert page.links[0].title == "县民政局2023年工作总结" and page.links[0].listing_url == PAGE


def test_an_item_names_one_article_even_with_a_column_tag_or_a_repeated_link():
    html = """<ul>
    <li><a href="/col/col9/index.html">[部门文件]</a><a href="/a/1.html" title="某县2023年民政工作总结">某县2023…</a>
        <span>2024-01-05</span></li>
    <li><a href="/col/col9/index.html">[部门文件]</a><a href="/a/2.html">某县2024年民政工作要点全文</a><span>2024-01-02</span></li>
    </ul><div class="hit"><a href="/a/3.html">政务信息 种植活动</a><a href="/a/3.html">某幼儿园</a>
    发布时间：2025-04-24 08:22:20</div>"""
    page = parse_listing(html, PAGE, BARE)
    assert [link.url.rsplit("/", 1)[1] for link in page.links] == ["1.html", "2.html"]  # the larger group: the list
    assert page.links[0].title == "某县2023年民政工作总结"


def test_a_date_beside_a_whole_menu_does_not_make_its_links_articles():
    html = ('<div class="top">今天是2024年3月8日 <a href="/a.html">首页</a><a href="/b.html">政务公开</a>'
            '<a href="/c.html">政务服务</a><a href="/d.html">互动交流</a></div>'
            + items(("/r/1.html", "报告一", "2024-03-01"), ("/r/2.html", "报告二", "2024-02-01")))  # fmt: skip
    assert [link.url.rsplit("/", 1)[1] for link in parse_listing(html, PAGE, BARE).links] == ["1.html", "2.html"]


def test_links_inside_jcms_cdata_records_are_found_with_title_and_date():
    html = """<html><body><div class="nav"><a href="/col/col2/index.html">其他栏目</a></div>
    <script type="text/xml"><datastore><recordset>
    <record><![CDATA[<li><a href="/art/2023/6/15/art_1_100.html" title="县民政局2022年度工作总结">县民政局…</a><span>2023-06-15</span></li>]]></record>
    <record><![CDATA[<li><a href="/art/2023/5/2/art_1_99.html">关于年检的公告</a><span>2023-05-02</span></li>]]></record>
    </recordset></datastore></script></body></html>"""
    for source in (SOURCE, BARE):
        page = parse_listing(html, PAGE, source)
        assert [link.url for link in page.links] == ["http://127.0.0.1:9/art/2023/6/15/art_1_100.html",
                                                     "http://127.0.0.1:9/art/2023/5/2/art_1_99.html"]  # fmt: skip
        assert page.links[0].title == "县民政局2022年度工作总结"
        assert str(page.links[0].listed_date) == "2023-06-15"


def test_list_items_a_template_left_in_a_comment_are_found():
    html = """<ul class="list"><!--
        <li><a href="/c/202511/17.shtml" title="关于开展课题结项工作的通知">关于开展…</a><b>2025-11-17</b></li>
        <li><a href="/c/202511/16.shtml" title="关于做好讲学计划实施工作的通知">关于做好…</a><b>2025-11-05</b></li>
    --></ul><!--<a class="ad" href="/zt/index.shtml"></a>-->"""
    page = parse_listing(html, PAGE, BARE)
    assert [link.url for link in page.links] == ["http://127.0.0.1:9/c/202511/17.shtml",
                                                 "http://127.0.0.1:9/c/202511/16.shtml"]  # fmt: skip


def test_article_url_pattern_narrows_the_dated_items():
    html = items(("/art/2024/1/1/art_1_1.html", "报告", "2024-01-01"), ("/news/9.html", "新闻", "2024-01-02"))
    assert [link.url for link in parse_listing(html, PAGE, SOURCE).links] == [
        "http://127.0.0.1:9/art/2024/1/1/art_1_1.html"]


def test_on_a_page_with_no_dated_item_the_pattern_alone_finds_the_articles():
    html = NAV + '<ul><li><a href="/art/2024/1/1/art_1_1.html">报告一</a></li><li><a href="/art/2024/1/2/art_1_2.html">报告二</a></li></ul>'
    assert len(parse_listing(html, PAGE, SOURCE).links) == 2
    assert parse_listing(html, PAGE, BARE).links == []  # no pattern, no dated list: nothing is guessed


def test_links_to_other_hosts_scripts_and_anchors_are_ignored():
    html = items(("http://evil.example/art/2023/1/1/art_1_1.html", "off site", "2023-01-01"),
                 ("javascript:void(0)", "打印", "2023-01-01"), ("#top", "顶部", "2023-01-01"),
                 ("/art/2023/1/1/art_1_2.html#p2", "ok", "2023-01-01"), ("/art/2023/1/1/art_1_2.html", "same", "2023-01-01"))
    page = parse_listing(html, PAGE, SOURCE)
    assert [link.url for link in page.links] == ["http://127.0.0.1:9/art/2023/1/1/art_1_2.html"]


# --- pagination ---------------------------------------------------------------------------------
def test_trs_create_page_html_script_gives_the_other_listing_pages():
    html = items(("./202104/t20210412_1.html", "A", "2021-04-12")) + '<script>createPageHTML(3, 0, "index", "html");</script>'
    page = parse_listing(html, "http://127.0.0.1:9/a/b/index.html", BARE)
    assert [link.url for link in page.links] == ["http://127.0.0.1:9/a/b/202104/t20210412_1.html"]
    assert page.next_pages == ["http://127.0.0.1:9/a/b/index_1.html", "http://127.0.0.1:9/a/b/index_2.html"]
    assert page.pagination == PAGINATED_BY_PAGER_SCRIPT
    later = parse_listing(html.replace("3, 0,", "3, 2,"), "http://127.0.0.1:9/a/b/index_2.html", BARE)
    assert later.next_pages == ["http://127.0.0.1:9/a/b/index.html", "http://127.0.0.1:9/a/b/index_1.html"]


def test_the_six_argument_create_page_html_gives_pages_and_records():
    html = "<script>createPageHTML('page_div',4, 1,'zwgklist','shtml',70);</script>"
    page = parse_listing(html, "http://127.0.0.1:9/c1/zwgklist.shtml", BARE)
    assert page.next_pages == [f"http://127.0.0.1:9/c1/zwgklist_{n}.shtml" for n in (2, 3, 4)]
    assert page.declared_records == 70 and page.pagination == PAGINATED_BY_PAGER_SCRIPT


def test_next_page_link_text_is_followed_without_a_pattern():
    html = '<a href="index_2.html">下一页</a>' + items(("/art/2024/1/1/art_5_1234.html", "报告", "2024-01-01"))
    page = parse_listing(html, "http://127.0.0.1:9/col/index.html", BARE)
    assert page.next_pages == ["http://127.0.0.1:9/col/index_2.html"]
    assert [link.url for link in page.links] == ["http://127.0.0.1:9/art/2024/1/1/art_5_1234.html"]
    assert page.pagination == PAGINATED_BY_STATIC_PAGES


def test_numbered_pager_links_are_followed_only_to_pages_of_the_same_listing():
    html = ('<div class="pager"><a href="/index.html">首页</a><a href="index_2.html">2</a><a href="index_3.html">3</a>'
            '<a href="?page=4">4</a><a href="/col/col7/index_5.html">5</a><a href="list_9.html">尾页</a></div>')  # fmt: skip
    page = parse_listing(html, "http://127.0.0.1:9/col/index.html", BARE)
    assert page.next_pages == ["http://127.0.0.1:9/col/index_2.html", "http://127.0.0.1:9/col/index_3.html",
                               "http://127.0.0.1:9/col/index.html?page=4"]  # fmt: skip


def test_jcms_records_with_a_declared_total_give_the_other_pages():
    html = """<div id="7036543"><script type="text/xml"><datastore>
    <nextgroup><![CDATA[<a href="/module/web/jpage/dataproxy.jsp?page=1&unitid=7036543"></a>]]></nextgroup>
    <recordset><record><![CDATA[<li><a href="/art/2024/3/8/art_1_1.html">报告</a><span>2024-03-08</span></li>]]></record>
    </recordset></datastore></script><script>$('#7036543').jpage({totalRecord: 31, perPage: 15});</script></div>"""
    page = parse_listing(html, PAGE, BARE)
    assert page.next_pages == [f"{PAGE}?uid=7036543&pageNum=2", f"{PAGE}?uid=7036543&pageNum=3"]
    assert (page.declared_records, page.pagination) == (31, PAGINATED_BY_JCMS)


def test_a_pager_that_leads_nowhere_is_a_search_api_and_its_total_is_read():
    html = (items(("/a/1.html", "一", "2024-01-01")) + "<p>已为您找到约<em>1,234</em>条相关结果</p>"
            '<div class="pager"><a href="javascript:;">1</a><a href="javascript:;">2</a><a href="javascript:;">3</a>'
            '<a href="javascript:;">下一页</a></div>')  # fmt: skip
    page = parse_listing(html, PAGE, BARE)
    assert (page.next_pages, page.pagination, page.declared_records) == ([], PAGINATED_BY_SEARCH_API, 1234)
    plain = parse_listing(items(("/a/1.html", "一", "2024-01-01")), PAGE, BARE)
    assert (plain.pagination, plain.declared_records) == (NOT_PAGINATED, None)


def test_counts_inside_list_items_are_not_the_declared_total():
    html = items(("/a/1.html", "关于补贴的公示，此次共13条", "2024-01-01"), ("/a/2.html", "二", "2024-01-02")) + "<p>共 2 条</p>"
    assert parse_listing(html, PAGE, BARE).declared_records == 2


# --- walking ------------------------------------------------------------------------------------
def _site(pages: dict[int, list[str]], dated: bool = True) -> dict[str, str | None]:
    """Listing pages as HTML: each holds its article links and a pageNum link to the next one."""
    html: dict[str, str | None] = {}
    numbers = sorted(pages)
    for i, number in enumerate(numbers):
        links = items(*[(f"/art/2023/1/1/art_1_{n}.html", f"r{n}", "2023-01-01") for n in pages[number]])
        nxt = f'<a href="/col/col1/index.html?uid=1&pageNum={numbers[i + 1]}">下一页</a>' if i + 1 < len(numbers) else ""
        html[_page_url(number)] = f"<html><body>{links}{nxt}</body></html>"
    return html


def _page_url(number: int) -> str:
    return PAGE if number == 1 else f"{PAGE}?uid=1&pageNum={number}"


def _reader(site: dict[str, str | None], read: list[str]):
    def read_page(url: str) -> str | None:
        read.append(url)
        return site.get(url)

    return read_page


def test_walk_follows_pagination_then_stops_at_pages_it_already_knows():
    site = _site({1: ["9", "8"], 2: ["7", "6"], 3: ["5", "4"]})
    read: list[str] = []
    first = walk_listing(SOURCE, _reader(site, read), known=set())
    assert len(first.links) == 6 and len(read) == 3 and first.complete
    assert first.stop_reason == "read to the end of the pagination"
    read.clear()
    site = _site({1: ["10", "9"], 2: ["8", "7"], 3: ["6", "5"]})  # one new report, pushed the rest along
    second = walk_listing(SOURCE, _reader(site, read), known=set(first.urls))
    assert len(read) == 2  # page 1 had a new link; page 2 held only known ones: stop there
    assert [u for u in second.urls if u not in first.urls] == ["http://127.0.0.1:9/art/2023/1/1/art_1_10.html"]
    assert second.not_needed == [_page_url(3)] and second.complete and second.new_links == 1


def test_walk_reads_everything_until_a_whole_listing_was_read_once():
    site = _site({1: ["9", "8"], 2: ["7", "6"], 3: ["5", "4"]})
    read: list[str] = []
    walk_listing(SOURCE, _reader(site, read), known={f"http://127.0.0.1:9/art/2023/1/1/art_1_{n}.html"
                                                     for n in range(4, 10)}, stop_when_known=False)  # fmt: skip
    assert len(read) == 3


def test_unreadable_listing_page_is_reported_not_fatal():
    site = _site({1: ["3"], 2: ["2"]})
    site[f"{PAGE}?uid=1&pageNum=2"] = None
    discovery = walk_listing(SOURCE, site.get, known=set())
    assert discovery.errors == [f"{PAGE}?uid=1&pageNum=2"] and len(discovery.links) == 1
    assert not discovery.complete and "reads them again" in discovery.stop_reason


def test_pages_left_by_earlier_runs_are_read_first_and_to_the_end():
    site = _site({1: ["9"], 2: ["8"], 3: ["7"], 4: ["6"]})
    read: list[str] = []
    known = {f"http://127.0.0.1:9/art/2023/1/1/art_1_{n}.html" for n in (9, 8)}
    discovery = walk_listing(SOURCE, _reader(site, read), known=known, resume=[_page_url(3)])
    assert read == [_page_url(3), _page_url(4), PAGE]  # the resumed tail, then the head (known: stop)
    assert discovery.resumed == [_page_url(3)] and discovery.new_links == 2 and discovery.complete


def test_a_page_budget_leaves_the_rest_for_the_next_walk():
    site = _site({n: [str(100 - n)] for n in range(1, 8)})
    read: list[str] = []
    first = walk_listing(SOURCE, _reader(site, read), known=set(), max_pages=3)
    assert read == [_page_url(n) for n in (1, 2, 3)] and first.pages_left == [_page_url(4)]
    assert not first.complete and "max_listing_pages 3" in first.stop_reason and _page_url(4) in first.stop_reason
    read.clear()
    second = walk_listing(SOURCE, _reader(site, read), known=set(first.urls), max_pages=3, resume=first.pages_left)
    assert read == [_page_url(4), _page_url(5), PAGE] and second.pages_left == [_page_url(6)]
    read.clear()
    third = walk_listing(SOURCE, _reader(site, read), known=set(first.urls + second.urls), max_pages=3,
                         resume=second.pages_left)  # fmt: skip
    assert read == [_page_url(6), _page_url(7), PAGE] and third.complete
    assert len(set(first.urls + second.urls + third.urls)) == 7


def test_a_resumed_page_linking_back_to_the_first_page_leaves_it_to_the_head_walk():
    site = {url: html.replace("<body>", '<body><a href="/col/col1/index.html">首页</a>') if html else html
            for url, html in _site({1: ["9"], 2: ["8"], 3: ["7"], 4: ["6"]}).items()}  # fmt: skip
    read: list[str] = []
    known = {f"http://127.0.0.1:9/art/2023/1/1/art_1_{n}.html" for n in (9, 8)}
    discovery = walk_listing(SOURCE, _reader(site, read), known=known, max_pages=2, resume=[_page_url(3)])
    assert read == [_page_url(3), PAGE] and discovery.pages_left == [_page_url(4)]


def test_pages_in_skip_are_not_requested():
    site = _site({1: ["9"], 2: ["8"]})
    read: list[str] = []
    walk_listing(SOURCE, _reader(site, read), known=set(), skip=frozenset({_page_url(2)}))
    assert read == [PAGE]


def test_warnings_name_empty_listings_unreadable_pagination_a_biting_budget_and_missing_records():
    empty = Discovery("s", pages_read=[PAGE], empty_pages=[PAGE], listing_urls=[PAGE])
    assert "yields no article link" in discovery_warnings(empty, 0)[0]
    short = Discovery("s", pages_read=[PAGE], declared_records={PAGE: 200}, listing_urls=[PAGE],
                      unfollowable=[PAGE])  # fmt: skip
    assert [w.split(" ")[0:3] for w in discovery_warnings(short, 20)] == [["listing", "page", PAGE],
                                                                         ["the", "listing", "declares"]]  # fmt: skip
    assert "200 records; 20 article links found" in discovery_warnings(short, 20)[1]
    assert discovery_warnings(short, 200) == [discovery_warnings(short, 20)[0]]
    capped = Discovery("s", pages_read=[PAGE], pages_left=["p4"], stop_reason="stopped after 3 listing pages …",
                       declared_records={PAGE: 200}, listing_urls=[PAGE])  # fmt: skip
    assert discovery_warnings(capped, 20) == ["stopped after 3 listing pages …"]  # no record check on a partial walk


# --- what to download ---------------------------------------------------------------------------
def test_plan_fetches_frontier_links_first_then_due_revalidations_with_validators():
    class State:  # the archive's PageState, reduced to what planning reads
        def __init__(self, url, etag):
            self.url, self.etag, self.last_modified = url, etag, None

    plan = plan_fetches(["a", "b", "a"], revalidate=[State("b", '"v1"'), State("c", None)],
                        validators={"b": State("b", '"v0"')})  # fmt: skip
    assert plan == [FetchItem("a"), FetchItem("b", '"v0"'), FetchItem("c")]
