"""The bundled sample site: content faithful to the seeds and gold, listings, and the server.

Expected values come from ../shared (seeds, gold) and sources.yaml, never from the sample
site's own content files, so a drift in either direction fails here.
"""

from __future__ import annotations

import dataclasses
import gzip
import html
import http.client
import json
import re
import shutil
import subprocess
import sys
import unicodedata
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import pytest
from bs4 import BeautifulSoup, NavigableString

from sample_site import (
    ContentError,
    Resource,
    SampleSiteServer,
    SiteSpec,
    article_path,
    build_corpus,
    build_sample_corpus,
    listing_path,
    load_sample_sites,
    load_site,
    render_article,
)
from sample_site.__main__ import main as cli_main
from tasks.records import Source
from tasks.sources import load_sources

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
GOLD = json.loads((SHARED / "gold" / "metadata.json").read_text(encoding="utf-8"))
SEED_SITES = {  # seed id -> site key, as in shared/README.md
    "000_06e97b03fb717fd4": "tiantai",
    "001_b3182bdf8b174f90": "xianju",
    "002_3bf373dcb34c6f29": "lengshuitan",
    "003_7aea48d1b3491a1a": "shengzhou",
    "004_de7a5c5b853a32a4": "cixi",
}
# The article body container of each site's template: a different class/id per CMS.
BODY_SELECTORS = {
    "tiantai": "#zoom",
    "xianju": ".bt-content",
    "lengshuitan": ".TRS_Editor",
    "shengzhou": "#ivs_content",
    "cixi": "#UCAP-CONTENT",
}
# Page labels per gold field (whitespace and the trailing colon are ignored when matching).
FIELD_LABELS = {
    "index_no": ("索引号",),
    "publisher": ("发布机构", "发文机关"),
    "publish_date": ("发布日期", "发文日期", "公开日期"),
    "written_date": ("成文日期",),
    "doc_number": ("文号",),
    "topic": ("主题分类",),
    "category": ("组配分类", "分类"),
    "disclosure_mode": ("公开方式",),
    "disclosure_scope": ("公开范围",),
}
FULLWIDTH = dict(zip("，；：（）！？", ",;:()!?"))
SAMPLE_BASE = "http://127.0.0.1:8765"
CHROME_NEEDLES = (
    'name="SiteName"', 'name="ColumnName"', 'name="ArticleTitle"', 'name="ContentSource"',
    "<script", "<style", "打印本页", "分享到", "微信", "微博", "相关链接", "网站标识码", "ICP备", "网安备",
)  # fmt: skip


def squash(text: str) -> str:
    """Gold's comparison form: NFKC, then no whitespace at all."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def decode(site: SiteSpec, body: bytes) -> str:
    return body.decode("gb18030" if site.charset == "gbk" else site.charset)


def soup_of(site: SiteSpec, body: bytes) -> BeautifulSoup:
    return BeautifulSoup(decode(site, body), "lxml")


def body_text(site: SiteSpec, body: bytes) -> str:
    """Visible text of the body container: tags stripped, <style>/<script> contents dropped."""
    container = soup_of(site, body).select_one(BODY_SELECTORS[site.key])
    assert container is not None, f"{site.key}: no {BODY_SELECTORS[site.key]} on the page"
    for element in container.select("script, style"):
        element.decompose()
    return container.get_text()


def seed_body_lines(doc_id: str) -> list[str]:
    """Seed lines from the paragraph holding gold body_starts to the one holding body_ends."""
    gold = GOLD["docs"][doc_id]
    lines = (SHARED / "seeds" / f"{doc_id}.txt").read_text(encoding="utf-8").split("\n")
    start = next(i for i, line in enumerate(lines) if squash(gold["body_starts"]) in squash(line))
    end = next(i for i, line in enumerate(lines) if squash(gold["body_ends"]) in squash(line))
    if doc_id.startswith("003"):  # 嵊州's cover block sits inside the content container
        start = lines.index("2023年工作总结与2024年工作思路")
    return lines[start : end + 1]


def labelled_values(soup: BeautifulSoup, label: str) -> list[str]:
    """Every value the page shows for `label`, however the site lays label and value out."""
    values = []
    for node in soup.find_all(string=True):
        if node.parent.name in ("script", "style", "title"):
            continue
        own = squash(node)
        if own.rstrip(":") == label:
            values.append(squash(value_after(node.parent)))
        elif own.startswith(label + ":"):  # label and value in one text: 发布日期：2024-01-11
            values.append(own[len(label) + 1 :])
    return values


def value_after(label_element) -> str:
    """<span>label</span>value, or the next cell/block: <td>label</td><td>value</td>."""
    tail = label_element.next_sibling
    if isinstance(tail, NavigableString) and squash(tail):
        return str(tail)
    following = label_element.find_next_sibling()
    return following.get_text() if following is not None else ""


@pytest.fixture(scope="module")
def sites() -> dict[str, SiteSpec]:
    return {site.key: site for site in load_sample_sites()}


@pytest.fixture(scope="module")
def corpus():
    return build_sample_corpus()


@pytest.fixture(scope="module")
def sources() -> dict[str, Source]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAMPLE_SITE_URL", SAMPLE_BASE)
        return {s.name: s for s in load_sources(ROOT / "sources.yaml")}


def seed_article(site: SiteSpec):
    return next(a for a in site.articles if a.seed)


# --- content -------------------------------------------------------------------------


def test_every_site_has_one_seed_and_at_least_seven_synthetic_items(sites):
    assert set(sites) == set(SEED_SITES.values())
    for doc_id, key in SEED_SITES.items():
        seeds = [a.seed for a in sites[key].articles if a.seed]
        synthetic = [a for a in sites[key].articles if a.synthetic]
        assert seeds == [doc_id]
        assert len(synthetic) >= 7, key


def test_seed_metadata_equals_gold(sites):
    for doc_id, key in SEED_SITES.items():
        article, gold = seed_article(sites[key]), GOLD["docs"][doc_id]
        assert squash(article.title) == squash(gold["title"])
        for field in FIELD_LABELS:
            value = getattr(article, field)
            expected = gold[field]
            assert (None if value is None else squash(str(value))) == (
                None if expected is None else squash(expected)
            ), f"{key}.{field}"


def test_synthetic_items_are_plausible_and_keep_the_site_index_shape(sites):
    for key, site in sites.items():
        org_code = seed_article(site).index_no.split("/")[0]
        for article in site.articles:
            shape = re.escape(org_code) + r"/\d{4}-\d{5,6}"
            assert re.fullmatch(shape, article.index_no), article.index_no
            assert article.index_no.split("/")[1][:4] == str(article.released.year)
            if article.synthetic:
                assert 3 <= len(article.paragraphs) <= 10, article.path
                text = "".join(article.paragraphs)
                assert "低保标准" not in text and "特困供养标准" not in text, article.path


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("publish_date: 2022-03-30", "publish_date: 2022-03-31"),  # disagrees with released
        ("    topic: ", "    subject: "),  # unknown key
        ("XE/2021-148305", "XE/2022-154826"),  # duplicate 索引号
    ],
)
def test_content_loader_rejects_malformed_site_files(tmp_path, old, new):
    copy = tmp_path / "cixi"
    shutil.copytree(ROOT / "sample_site" / "content" / "cixi", copy)
    site_yaml = copy / "site.yaml"
    text = site_yaml.read_text(encoding="utf-8")
    assert old in text
    site_yaml.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ContentError):
        load_site(copy)


# --- rendered article pages ------------------------------------------------------------


@pytest.mark.parametrize("doc_id", sorted(SEED_SITES))
def test_seed_body_renders_full_width_and_nfkc_equals_the_seed(sites, doc_id):
    site = sites[SEED_SITES[doc_id]]
    text = body_text(site, render_article(site, seed_article(site)))
    expected = "".join(seed_body_lines(doc_id))
    assert squash(text) == squash(expected)
    # Stronger: undoing only the seven full-width marks gives the seed character for character.
    plain = re.sub(r"\s+", "", "".join(FULLWIDTH.get(ch, ch) for ch in text))
    assert plain == re.sub(r"\s+", "", expected)
    assert not re.search(r"[,;:()!?]", text), "ASCII punctuation left in a Chinese body"
    assert not [m for m in GOLD["chrome_markers"] if squash(m) in squash(text)]


@pytest.mark.parametrize("doc_id", sorted(SEED_SITES))
def test_gold_metadata_is_stated_on_the_seed_page_and_nulls_are_empty(sites, doc_id):
    site, gold = sites[SEED_SITES[doc_id]], GOLD["docs"][doc_id]
    body = render_article(site, seed_article(site))
    soup = soup_of(site, body)
    assert squash(gold["title"]) in squash(soup.get_text())
    meta_title = soup.find("meta", attrs={"name": "ArticleTitle"})["content"]
    assert squash(meta_title) == squash(gold["title"])
    for field, labels in FIELD_LABELS.items():
        values = [v for label in labels for v in labelled_values(soup, label)]
        where = f"{site.key}.{field}: page shows {values}"
        if gold[field] is None:  # absent, or an empty cell
            assert all(v == "" for v in values), where
        else:
            assert any(v.startswith(squash(gold[field])) for v in values), where


@pytest.mark.parametrize("key", sorted(BODY_SELECTORS))
def test_article_pages_carry_real_government_chrome(sites, corpus, key):
    site = sites[key]
    needles = CHROME_NEEDLES + (site.name, "您当前的位置" if key == "shengzhou" else "当前位置")
    for article in site.articles:
        page = decode(site, corpus[article.path].body)
        assert not [n for n in needles if n not in page], article.path


def test_lengshuitan_is_gbk_that_strict_gb2312_cannot_decode(sites, corpus):
    site = sites["lengshuitan"]
    paths = [p for p in corpus if p.startswith(site.prefix + "/")]
    assert len(paths) >= len(site.articles) + 3
    for path in paths:
        body = corpus[path].body
        assert corpus[path].content_type == "text/html"
        assert b'content="text/html; charset=gb2312"' in body
        with pytest.raises(UnicodeDecodeError):
            body.decode("gb2312")
        body.decode("gb18030")
    seed_page = corpus[seed_article(site).path].body.decode("gb18030")
    assert "冷水滩区民政局<br>2020年工作总结和2021年工作规划" in seed_page


def test_shengzhou_page_keeps_the_seed_footer_and_odd_date_spacing(sites, corpus):
    page = corpus[seed_article(sites["shengzhou"]).path].body.decode("utf-8")
    text = squash(BeautifulSoup(page, "lxml").get_text())
    seed = (SHARED / "seeds" / "003_7aea48d1b3491a1a.txt").read_text(encoding="utf-8").split("\n")
    for line in seed[-5:]:
        assert squash(line) in text, line
    assert "发布日期：2024- 05- 17 09: 06" in page
    assert "您当前的位置： &gt;&gt; " in page


# --- listings --------------------------------------------------------------------------


def listing_links(page_url: str, page: str) -> list[str]:
    """Absolute URLs of every href, including those inside jcms <![CDATA[ records."""
    return [urljoin(page_url, html.unescape(h)) for h in re.findall(r'href="([^"]+)"', page)]


def further_pages(page_url: str, page: str, source: Source) -> list[str]:
    """Pagination as a crawler meets it: ?pageNum links, 下一页 anchors, or TRS createPageHTML."""
    pattern = source.next_page_pattern
    found = [u for u in listing_links(page_url, page) if pattern and re.search(pattern, u)]
    nexts = re.findall(r'<a href="([^"]+)">下一页</a>', page)
    found += [urljoin(page_url, html.unescape(h)) for h in nexts]
    trs = re.search(r'createPageHTML\((\d+),\s*(\d+),\s*"(\w+)",\s*"(\w+)"\)', page)
    if trs:
        count, _, name, ext = int(trs[1]), int(trs[2]), trs[3], trs[4]
        names = [f"{name}_{i}.{ext}" if i else f"{name}.{ext}" for i in range(count)]
        found += [urljoin(page_url, n) for n in names]
    return found


def corpus_key(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def crawl_listings(corpus, site: SiteSpec, source: Source) -> dict[str, list[str]]:
    """Listing URL -> article URLs on it, following pagination from sources.yaml's start page."""
    todo, seen = list(source.listing_urls), {}
    while todo:
        url = todo.pop(0)
        if url in seen:
            continue
        page = decode(site, corpus[corpus_key(url)].body)
        links = listing_links(url, page)
        seen[url] = [u for u in links if re.search(source.article_url_pattern, u)]
        todo += further_pages(url, page, source)
    return seen


@pytest.mark.parametrize("key", sorted(BODY_SELECTORS))
def test_listings_link_every_article_once_newest_first(sites, corpus, sources, key):
    site, source = sites[key], sources[key]
    assert source.listing_urls == (SAMPLE_BASE + site.column.path,)
    pages = crawl_listings(corpus, site, source)
    n_pages = -(-len(site.articles) // site.column.per_page)
    canonical = [SAMPLE_BASE + listing_path(site.column, n) for n in range(1, n_pages + 1)]
    assert set(canonical) <= set(pages), "pagination does not reach every listing page"
    assert n_pages >= (3 if key == "lengshuitan" else 2)
    linked = [urlsplit(u).path for page in canonical for u in pages[page]]
    assert Counter(linked) == Counter(a.path for a in site.articles)
    released = {a.path: a.released for a in site.articles}
    assert [released[p] for p in linked] == sorted(released.values(), reverse=True)
    for page in canonical:  # chrome a listing carries besides the items
        text = decode(site, corpus[corpus_key(page)].body)
        assert "<form" in text and site.name in text and "网站标识码" in text, page
    seed_url = SAMPLE_BASE + seed_article(site).path
    assert seed_url in pages[canonical[0]] + pages[canonical[1]]


def test_listing_pages_use_each_cms_pagination(corpus, sites):
    tiantai = corpus["/tiantai/col/col1229243925/index.html"].body.decode()
    assert '<script type="text/xml"><datastore>' in tiantai
    assert "<![CDATA[<li><a href=" in tiantai.replace("\n", "")
    assert ">下一页</a>" in tiantai and "pageNum=2" in tiantai
    xianju = corpus["/xianju/col/col1229462371/index.html"].body.decode()
    assert "CDATA" not in xianju and '<ul class="xj-list">' in xianju
    lst = corpus["/lengshuitan/zwgk/bmxxgk/mzj/ghjh/index.html"].body.decode("gb18030")
    assert 'createPageHTML(3, 0, "index", "html");' in lst
    anchors = BeautifulSoup(lst, "lxml").find_all("a")
    assert not [a for a in anchors if "下一页" in a.get_text() or "index_" in a.get("href", "")]
    assert 'href="./202' in lst
    shengzhou = corpus["/shengzhou/col/col1229116624/index.html"].body.decode()
    assert '<a href="index_2.html">下一页</a>' in shengzhou


# --- rendering API for synthetic corpora ----------------------------------------------------


def test_api_renders_a_generated_article_with_a_minted_url(sites, sources):
    site = sites["lengshuitan"]
    released = datetime(2025, 1, 9, 10, 0, tzinfo=seed_article(site).released.tzinfo)
    path = article_path(site, released, 7000001)
    generated = dataclasses.replace(
        seed_article(site), path=path, released=released, seed=None, synthetic=True
    )
    bigger = dataclasses.replace(site, articles=site.articles + (generated,))
    corpus = build_corpus([bigger])
    assert re.search(sources["lengshuitan"].article_url_pattern, path)
    assert corpus[path].body == render_article(bigger, generated)
    first_page = corpus[listing_path(site.column, 1)].body.decode("gb18030")
    assert "./202501/t20250109_7000001.html" in first_page


def test_build_writes_static_files(tmp_path):
    assert cli_main(["build", str(tmp_path)]) == 0
    assert (tmp_path / "robots.txt").is_file()
    assert (tmp_path / "tiantai/col/col1229243925/index.html?uid=7036543&pageNum=2").is_file()
    gbk_page = tmp_path / "lengshuitan/zwgk/bmxxgk/mzj/ghjh/202104/t20210412_5931047.html"
    assert "冷水滩区民政局<br>" in gbk_page.read_bytes().decode("gbk")


# --- the server, over a real socket ------------------------------------------------------


@pytest.fixture(scope="module")
def server(corpus):
    with SampleSiteServer(corpus) as running:
        yield running


def request(server, path: str, method: str = "GET", headers: dict[str, str] | None = None):
    host, port = urlsplit(server.base_url).hostname, urlsplit(server.base_url).port
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_server_binds_an_ephemeral_loopback_port(server):
    assert server.base_url.startswith("http://127.0.0.1:") and not server.base_url.endswith(":0")


def test_server_serves_pages_with_validators(server, corpus):
    path = "/tiantai/art/2023/6/15/art_1229243925_3871526.html"
    status, headers, body = request(server, path)
    assert status == 200 and body == corpus[path].body
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["etag"] and headers["last-modified"] == "Thu, 15 Jun 2023 01:37:00 GMT"


def test_server_404_is_an_html_page(server):
    status, headers, body = request(server, "/tiantai/art/2023/6/15/art_1_1.html")
    assert status == 404 and headers["content-type"].startswith("text/html")
    assert "页面不存在" in body.decode("utf-8")


def test_server_answers_conditional_requests_with_304(server):
    path = "/cixi/col/col1229078218/index.html"
    _, headers, _ = request(server, path)
    status, _, body = request(server, path, headers={"If-None-Match": headers["etag"]})
    assert (status, body) == (304, b"")
    status, _, _ = request(server, path, headers={"If-Modified-Since": headers["last-modified"]})
    assert status == 304
    earlier = format_datetime(datetime(2020, 1, 1).astimezone(), usegmt=False)
    status, _, _ = request(server, path, headers={"If-Modified-Since": earlier})
    assert status == 200
    both = {"If-None-Match": '"stale"', "If-Modified-Since": headers["last-modified"]}
    assert request(server, path, headers=both)[0] == 200  # If-None-Match wins


def test_server_gzips_when_asked_and_head_sends_no_body(server, corpus):
    path = "/xianju/art/2024/1/11/art_1229462371_59046811.html"
    status, headers, body = request(server, path, headers={"Accept-Encoding": "gzip, deflate"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == corpus[path].body
    status, headers, body = request(server, path, "HEAD")
    assert status == 200 and body == b""
    assert int(headers["content-length"]) == len(corpus[path].body)
    refused = request(server, path, headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused[1]


def test_server_gbk_header_has_no_charset_and_query_pages_differ(server, corpus):
    _, headers, _ = request(server, "/lengshuitan/zwgk/bmxxgk/mzj/ghjh/index_1.html")
    assert headers["content-type"] == "text/html"
    column = "/tiantai/col/col1229243925/index.html"
    page2 = request(server, column + "?uid=7036543&pageNum=2")[2]
    page1 = request(server, column)[2]
    assert page2 != page1 and page2 == corpus[column + "?uid=7036543&pageNum=2"].body
    assert request(server, column + "?from=search")[2] == page1  # unknown query: the bare page


def test_server_robots_txt_spares_columns_and_articles(server, sources):
    status, headers, body = request(server, "/robots.txt")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    robots = RobotFileParser()
    robots.parse(body.decode("utf-8").splitlines())
    assert not robots.can_fetch("govetl", SAMPLE_BASE + "/tiantai/module/search/index.jsp?q=民政")
    assert not robots.can_fetch("govetl", SAMPLE_BASE + "/cixi/module/jslib/jquery/jquery.js")
    for source in sources.values():
        assert robots.can_fetch("govetl", source.listing_urls[0])
    article = "/cixi/art/2022/3/30/art_1229078218_3910457.html"
    assert robots.can_fetch("govetl", SAMPLE_BASE + article)


def test_server_sees_corpus_changes_and_handles_parallel_clients(server, corpus):
    path = "/shengzhou/col/col1229116624/index_2.html"
    original = corpus[path]
    _, before, _ = request(server, path)
    try:
        later = original.last_modified + timedelta(days=1)
        corpus[path] = Resource(b"<html>changed</html>", original.content_type, later)
        status, after, body = request(server, path, headers={"If-None-Match": before["etag"]})
        assert (status, body) == (200, b"<html>changed</html>") and after["etag"] != before["etag"]
        corpus[path] = Resource(
            b"busy", "text/html", later, status=503, headers={"Retry-After": "1"}
        )
        status, headers, _ = request(server, path)
        assert status == 503 and headers["retry-after"] == "1"
    finally:
        corpus[path] = original
    paths = sorted(p for p in corpus if "/art/" in p)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda p: request(server, p), paths))
    assert [(status, body) for status, _, body in results] == [(200, corpus[p].body) for p in paths]


def test_serve_command_stops_on_ctrl_c_without_traceback():
    process = subprocess.Popen(
        [sys.executable, "-m", "sample_site", "serve", "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base_url = process.stdout.readline().strip()
        parts = urlsplit(base_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        connection.request("GET", "/robots.txt")
        assert connection.getresponse().status == 200
        connection.close()
        process.send_signal(2)  # SIGINT, as Ctrl-C
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
    assert "Traceback" not in stderr and '"GET /robots.txt HTTP/1.1" 200' in stderr
