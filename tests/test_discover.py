"""Discovery: links and pagination from listing pages, and when to stop walking."""

from __future__ import annotations

from tasks.crawl.discover import FetchItem, parse_listing, plan_fetches, walk_listing
from tasks.sources import parse_source

SOURCE = parse_source({
    "name": "t", "region": "某县", "listing_urls": ["http://127.0.0.1:9/col/col1/index.html"],
    "article_url_pattern": r"/art/\d{4}/\d{1,2}/\d{1,2}/art_\d+_\d+\.html$",
    "next_page_pattern": r"/col/col1/index\.html\?.*pageNum=\d+",
})  # fmt: skip
PAGE = "http://127.0.0.1:9/col/col1/index.html"


def test_links_inside_jcms_cdata_records_are_found_with_title_and_date():
    html = """<html><body><div class="nav"><a href="/col/col2/index.html">其他栏目</a></div>
    <script type="text/xml"><datastore><recordset>
    <record><![CDATA[<li><a href="/art/2023/6/15/art_1_100.html" title="县民政局2022年度工作总结">县民政局…</a><span>2023-06-15</span></li>]]></record>
    <record><![CDATA[<li><a href="/art/2023/5/2/art_1_99.html">关于年检的公告</a><span>2023-05-02</span></li>]]></record>
    </recordset></datastore></script></body></html>"""
    page = parse_listing(html, PAGE, SOURCE)
    assert [link.url for link in page.links] == ["http://127.0.0.1:9/art/2023/6/15/art_1_100.html",
                                                 "http://127.0.0.1:9/art/2023/5/2/art_1_99.html"]  # fmt: skip
    assert page.links[0].title == "县民政局2022年度工作总结"
    assert str(page.links[0].listed_date) == "2023-06-15"


def test_trs_create_page_html_script_gives_the_other_listing_pages():
    html = """<ul><li><a href="./202104/t20210412_1.html">A</a></li></ul>
    <script>createPageHTML(3, 0, "index", "html");</script>"""
    source = parse_source({"name": "trs", "region": "区", "listing_urls": ["http://127.0.0.1:9/a/b/index.html"],
                           "article_url_pattern": r"/\d{6}/t\d{8}_\d+\.html$"})  # fmt: skip
    page = parse_listing(html, "http://127.0.0.1:9/a/b/index.html", source)
    assert [link.url for link in page.links] == ["http://127.0.0.1:9/a/b/202104/t20210412_1.html"]
    assert page.next_pages == ["http://127.0.0.1:9/a/b/index_1.html", "http://127.0.0.1:9/a/b/index_2.html"]


def test_next_page_link_text_is_followed_without_a_pattern():
    source = parse_source({"name": "n", "region": "市", "listing_urls": ["http://127.0.0.1:9/col/index.html"]})
    html = '<a href="index_2.html">下一页</a><a href="/art/2024/1/1/art_5_1234.html">报告</a>'
    page = parse_listing(html, "http://127.0.0.1:9/col/index.html", source)
    assert page.next_pages == ["http://127.0.0.1:9/col/index_2.html"]
    assert [link.url for link in page.links] == ["http://127.0.0.1:9/art/2024/1/1/art_5_1234.html"]


def test_links_to_other_hosts_scripts_and_anchors_are_ignored():
    html = """<a href="http://evil.example/art/2023/1/1/art_1_1.html">off site</a>
    <a href="javascript:void(0)">打印</a><a href="#top">顶部</a><a href="mailto:x@y">信箱</a>
    <a href="/art/2023/1/1/art_1_2.html#p2">ok</a><a href="/art/2023/1/1/art_1_2.html">same</a>"""
    page = parse_listing(html, PAGE, SOURCE)
    assert [link.url for link in page.links] == ["http://127.0.0.1:9/art/2023/1/1/art_1_2.html"]


def _site(pages: dict[str, list[str]]) -> dict[str, str]:
    """Listing pages as HTML: each holds its article links and a pageNum link to the next one."""
    html = {}
    numbers = sorted(pages)
    for i, number in enumerate(numbers):
        links = "".join(f'<a href="/art/2023/1/1/art_1_{n}.html">r{n}</a>' for n in pages[number])
        nxt = f'<a href="/col/col1/index.html?uid=1&pageNum={numbers[i + 1]}">下一页</a>' if i + 1 < len(numbers) else ""
        url = PAGE if number == 1 else f"{PAGE}?uid=1&pageNum={number}"
        html[url] = f"<html><body>{links}{nxt}</body></html>"
    return html


def test_walk_follows_pagination_then_stops_at_pages_it_already_knows():
    site = _site({1: ["9", "8"], 2: ["7", "6"], 3: ["5", "4"]})
    read: list[str] = []

    def read_page(url: str) -> str | None:
        read.append(url)
        return site.get(url)

    first = walk_listing(SOURCE, read_page, known=set())
    assert len(first.links) == 6 and len(read) == 3
    read.clear()
    site = _site({1: ["10", "9"], 2: ["8", "7"], 3: ["6", "5"]})  # one new report, pushed the rest along
    second = walk_listing(SOURCE, read_page, known=set(first.urls))
    assert len(read) == 2  # page 1 had a new link; page 2 held only known ones: stop there
    assert [u for u in second.urls if u not in first.urls] == ["http://127.0.0.1:9/art/2023/1/1/art_1_10.html"]


def test_unreadable_listing_page_is_reported_not_fatal():
    site = _site({1: ["3"], 2: ["2"]})
    site[f"{PAGE}?uid=1&pageNum=2"] = None
    discovery = walk_listing(SOURCE, site.get, known=set())
    assert discovery.errors == [f"{PAGE}?uid=1&pageNum=2"] and len(discovery.links) == 1


def test_plan_fetches_new_links_first_then_due_revalidations_with_validators():
    class State:  # the archive's PageState, reduced to what planning reads
        def __init__(self, url, etag):
            self.url, self.etag, self.last_modified = url, etag, None

    plan = plan_fetches(["a", "b", "a"], known={"b"}, due=[State("b", '"v1"'), State("c", None)])
    assert plan == [FetchItem("a"), FetchItem("b", '"v1"'), FetchItem("c")]
