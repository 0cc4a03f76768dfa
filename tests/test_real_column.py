"""A column of real pages, none stating a 索引号, with a minimal source entry: all load, twice.

The article pages are real pages of ../shared/real_pages served as saved (GBK ones too),
linked from a column page whose links have fewer than four digits in their paths and no
article_url_pattern to find them: the source entry is only name, region and listing_urls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from evaluation.real import REAL_DIR, real_pages_available
from flows.nightly import nightly
from sample_site import Corpus, Resource, SampleSiteServer
from warehouse.schema.tables import data_tables

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not real_pages_available(), reason="../shared/real_pages is not beside the repository")]

# Real article pages that state no 索引号 (and one that does, with a label's empty value).
PAGES = ("004", "007", "009", "013", "014", "015")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def column_corpus() -> Corpus:
    corpus = Corpus()
    items = []
    for n, page in enumerate(PAGES, start=1):
        raw = (REAL_DIR / "html" / f"{page}.html").read_bytes()
        charset = "gbk" if page in ("007", "015") else "utf-8"
        corpus[f"/xxgk/{n}.html"] = Resource(raw, f"text/html; charset={charset}", NOW)
        items.append(f"<li><a href='/xxgk/{n}.html' title='文件{n}'>文件标题第{n}篇</a><span>2023-0{n}-1{n}</span></li>")
    listing = ("<html><head><meta charset='utf-8'><title>政府信息公开</title></head><body>"
               "<div class='nav'><a href='/'>首页</a><a href='/xxgk/'>政务公开</a></div>"
               f"<ul class='list'>{''.join(items)}</ul><div>共6条</div></body></html>")  # fmt: skip
    corpus["/xxgk/index.html"] = Resource(listing.encode("utf-8"), "text/html; charset=utf-8", NOW)
    corpus["/robots.txt"] = Resource(b"User-agent: *\nAllow: /\n", "text/plain", NOW)
    return corpus


def test_a_minimal_entry_loads_every_report_of_a_real_column_twice_without_a_rewrite(prefect_api, tmp_path: Path):
    with SampleSiteServer(column_corpus()) as site:
        sources = tmp_path / "sources.yaml"
        entry = {"name": "real", "region": "某县", "listing_urls": [site.base_url.rstrip("/") + "/xxgk/index.html"]}
        sources.write_text(yaml.safe_dump({"sources": [entry]}, allow_unicode=True), encoding="utf-8")
        warehouse = tmp_path / "w.duckdb"
        first = {row["source"]: row for row in nightly(sources_file=str(sources), warehouse_path=str(warehouse))}
        before = _checksums(warehouse)
        second = {row["source"]: row for row in nightly(sources_file=str(sources), warehouse_path=str(warehouse),
                                                       revalidate_after_hours=0)}  # fmt: skip
    assert first["real"]["discovered"] == len(PAGES)
    assert (first["real"]["new"], first["real"]["rejected"]) == (len(PAGES), 0)
    assert (second["real"]["new"], second["real"]["changed"]) == (0, 0)
    assert _checksums(warehouse) == before  # nothing rewritten
    with duckdb.connect(str(warehouse), read_only=True) as con:
        kinds = dict(con.execute("select key_kind, count(*) from reports group by all").fetchall())
        assert sum(kinds.values()) == len(PAGES) and set(kinds) <= {"document_id", "url"}
        assert con.execute("select count(*) from reports where body_text is null or length(body_text) < 40").fetchone() == (0,)


def _checksums(warehouse: Path) -> dict[str, tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {t: con.execute(f"select count(*), sum(hash(t)) from {t} as t").fetchone() for t in data_tables()}
