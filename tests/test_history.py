"""Truthful history through the whole nightly flow, one test per fault (issues 16.3, 17.2, 17.4):
a page that states its 索引号 only later, a page renumbered, two pages stating one 索引号, a
page taken down (404, or a redirect to the home page) and back, a damaged warehouse rebuilt
from the raw archive. Each lays a column over the loopback FaultServer, runs the real flow
(tests/test_faults_flow.py's Harness) and asserts what an operator sees: reports current and
superseded, versions, conflicts, gone_at, the counts of the run, and that no row is lost or
doubled (`assert_whole`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tasks.extract.keys import canonical_url
from tasks.settings import PROJECT_ROOT
from tasks.summary import format_summary
from tests.faultserver import not_found, redirect_to, report_page
from tests.test_faults_flow import (Harness, assert_whole, children_by_report, expected_children, good_site,  # noqa: F401
                                    h, index_no, server)  # fmt: skip  (h, server: the fixtures)
from warehouse.analyst.export import export_warehouse
from warehouse.backend.errors import WarehouseDamaged
from warehouse.backend.rebuild import check_warehouse
from warehouse.writer.history import keyed_tables

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def rows_under(h: Harness, key: str) -> dict[str, int]:
    """Rows stored under `key`, in every table keyed by index_no."""
    with duckdb.connect(str(h.warehouse), read_only=True) as con:
        return {t: con.execute(f'select count(*) from "{t}" where index_no = ?', [key]).fetchone()[0]
                for t in keyed_tables(con)}  # fmt: skip


# --- a page states its 索引号 only in a later version ----------------------------------------
def test_a_page_first_served_without_an_index_no_then_with_one_takes_it_with_its_history(h, server):
    site = good_site(server, "/a", 2)
    site.article("late.html", report_page(None))
    h.write_sources(site.source("a"))
    first = h.run()
    url = site.url("late.html")
    stand_in = canonical_url(url)
    assert (first.sources["a"].new, first.sources["a"].rejected) == (3, 0)
    assert h.query("select key_kind from reports where index_no = ?", [stand_in]) == [("url",)]
    key = "001002/2023-00500"
    site.set_body("late.html", report_page(key))  # the CMS now prints the 索引号

    second = h.run(revalidate_after_hours=0)

    counts = second.sources["a"]
    assert (counts.fetched, counts.not_modified, counts.new, counts.changed) == (1, 2, 0, 1), format_summary(second)
    assert set(rows_under(h, stand_in).values()) == {0}  # nothing left under the stand-in key, in any table
    assert h.query("select key_kind, former_key, version, url from reports where index_no = ?", [key]) == [
        ("index_no", stand_in, 2, url)]
    assert h.query("select version, change_kind, url from report_versions where index_no = ? order by 1", [key]) == [
        (1, "new", url), (2, "content_changed", url)]  # its history came with it
    assert children_by_report(h)[key] == expected_children(report_page(key), url, h, "a")
    assert rows_under(h, key)["search_sections"] == rows_under(h, key)["sections"]
    assert h.scalar("select count(*) from latest_reports") == 3
    before = h.checksums()
    third = h.run(revalidate_after_hours=0)
    assert (third.sources["a"].new, third.sources["a"].changed, third.sources["a"].fetched) == (0, 0, 0)
    assert h.checksums() == before
    assert_whole(h, {index_no("/a", 1): {site.url("0001.html")}, index_no("/a", 2): {site.url("0002.html")},
                     key: {url}})  # fmt: skip


# --- a URL whose page now states another 索引号 --------------------------------------------
def test_a_renumbered_page_supersedes_its_old_report_and_nothing_counts_twice(h, server, tmp_path):
    site = good_site(server, "/a", 3)
    h.write_sources(site.source("a"))
    h.run()
    figures = h.scalar("select sum(n_metrics) from latest_reports")
    old, new = index_no("/a", 2), index_no("/a", 99)
    site.set_body("0002.html", report_page(new))  # same report, the CMS gave it another 索引号

    summary = h.run(revalidate_after_hours=0)

    assert (summary.sources["a"].new, summary.sources["a"].changed) == (1, 0)
    assert h.scalar("select count(*) from reports") == 4  # the old report is kept, with its history …
    assert h.query("select superseded_by, superseded_at is not null from reports where index_no = ?", [old]) == [
        (new, True)]
    assert h.scalar("select count(*) from latest_reports") == 3  # … but counted once, as the new one
    assert h.scalar("select sum(n_metrics) from latest_reports") == figures
    assert h.scalar("select count(*) from indicator_series where index_no = ?", [old]) == 0
    assert h.query("select index_no, moved_to from report_urls where url = ? order by 1", [site.url("0002.html")]) == [
        (old, new), (new, None)]  # the link kept, saying where it went
    assert [c for c in summary.checks if c["status"] != "pass"] == []
    written = export_warehouse(h.warehouse, tmp_path / "parquet")
    assert written["latest_reports"] == 3 and written["metrics"] == figures and written["reports"] == 4
    before = h.checksums()
    again = h.run(revalidate_after_hours=0)
    assert (again.sources["a"].new, again.sources["a"].changed, again.sources["a"].not_modified) == (0, 0, 3)
    assert h.checksums() == before
    assert_whole(h, {index_no("/a", 1): {site.url("0001.html")}, old: {site.url("0002.html")},
                     index_no("/a", 3): {site.url("0003.html")}, new: {site.url("0002.html")}})  # fmt: skip


# --- two pages of one column state one 索引号 ------------------------------------------------
def test_two_pages_stating_one_index_no_record_a_conflict_and_never_flip_the_report(h, server):
    site = good_site(server, "/a", 1)
    shared = "001002/2023-00099"
    first = site.article("first.html", report_page(shared), validators=False)  # refetched in full every run
    site.article("second.html", report_page(shared, extra="另一篇文章误用了这个索引号。"), validators=False)
    h.write_sources(site.source("a"))

    runs = [h.run(), h.run(revalidate_after_hours=0), h.run(revalidate_after_hours=0)]

    assert server.hits(first) == 3
    counts = [(r.sources["a"].new, r.sources["a"].changed, r.sources["a"].unchanged, r.sources["a"].rejected)
              for r in runs]  # fmt: skip
    assert counts == [(2, 0, 0, 1), (0, 0, 1, 1), (0, 0, 1, 1)]  # no version flip-flop
    assert [e for e in runs[0].sources["a"].errors if site.url("second.html") in e and "conflict" in e]
    assert h.query("select version, url from reports where index_no = ?", [shared]) == [(1, site.url("first.html"))]
    assert h.scalar("select count(*) from report_versions where index_no = ?", [shared]) == 1
    ((url, owner, first_seen, last_seen, resolved),) = h.query(
        "select url, owner_url, first_seen_at, last_seen_at, resolved_at from report_conflicts")
    assert (url, owner, resolved) == (site.url("second.html"), site.url("first.html"), None)
    assert first_seen == last_seen  # seen again unchanged: nothing rewritten
    assert h.query("select reason from rejects") == [("conflict",)]
    warned = {c["check_name"]: c for c in runs[0].checks if c["status"] != "pass"}
    assert list(warned) == ["report_conflicts_unresolved"] and site.url("second.html") in warned[
        "report_conflicts_unresolved"]["detail"]
    assert_whole(h, {index_no("/a", 1): {site.url("0001.html")}, shared: {site.url("first.html")}})


# --- a loaded page taken down, and back --------------------------------------------------------
def test_a_loaded_page_that_answers_404_is_kept_marked_gone_and_cleared_when_it_comes_back(h, server):
    site = good_site(server, "/a", 3)
    h.write_sources(site.source("a", gone_recheck_after_days=1e-6))  # asked again every run (0.09 s)
    h.run()
    key = index_no("/a", 2)
    site.route("0002.html", not_found)

    second = h.run(revalidate_after_hours=0)

    assert second.sources["a"].failed == 1 and [e for e in second.sources["a"].errors if "404" in e]
    (answered,) = h.query("select max(fetched_at) from fetch_log where url = ? and status = 404",
                          [site.url("0002.html")])[0]  # fmt: skip
    assert h.query("select index_no, gone_at from reports where gone_at is not null") == [(key, answered)]
    assert h.query("select status from report_history where index_no = ?", [key]) == [("gone",)]
    assert h.scalar("select count(*) from latest_reports") == 3  # kept: what it said was published
    h.run(revalidate_after_hours=0)  # still 404: gone since the first one
    assert h.scalar("select gone_at from reports where index_no = ?", [key]) == answered
    site.route("0002.html", site._article)  # back, unchanged

    back = h.run(revalidate_after_hours=0)

    assert (back.sources["a"].not_modified, back.sources["a"].failed) == (3, 0)
    assert h.scalar("select count(*) from reports where gone_at is not null") == 0
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2, 3)})


def test_a_loaded_page_that_now_redirects_home_is_marked_gone_and_the_home_page_is_no_report(h, server):
    site = good_site(server, "/a", 2)
    server.routes["/"] = lambda req, hit: req.send(  # a portal: news, links, a long page
        200, ("<html><head><meta charset='utf-8'><title>某县人民政府门户网站</title></head><body><div id='zoom'>"
              + "<p>欢迎访问某县人民政府门户网站。今日要闻：全县新增养老床位200张。</p>" * 20 + "</div></body></html>").encode())
    h.write_sources(site.source("a"))
    h.run()
    site.route("0002.html", redirect_to("/"))  # the page was taken down: the CMS sends its readers home

    summary = h.run(revalidate_after_hours=0)

    counts = summary.sources["a"]
    assert (counts.fetched, counts.new, counts.rejected) == (1, 0, 1), format_summary(summary)
    assert [e for e in counts.errors if site.url("0002.html") in e and "redirected_home" in e]
    assert h.query("select index_no from reports where gone_at is not null") == [(index_no("/a", 2),)]
    assert h.scalar("select count(*) from reports") == 2  # the home page is no report
    assert h.query("select url, reason, final_url from rejects") == [
        (site.url("0002.html"), "redirected_home", server.url("/"))]
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2)})


# --- a damaged warehouse -----------------------------------------------------------------------
def test_a_damaged_warehouse_is_named_and_rebuilt_from_the_archive_with_its_history(h, server):
    site = good_site(server, "/a", 3)
    h.write_sources(site.source("a"))
    h.run()
    key = index_no("/a", 2)
    site.set_body("0002.html", report_page(key, extra="补充说明：全年新增养老床位100张。"))
    h.run(revalidate_after_hours=0)  # version 2 of one report
    with h.warehouse.open("r+b") as f:  # a disk error in the file's header block
        f.seek(4096)
        f.write(b"\0" * 4096)

    with pytest.raises(WarehouseDamaged) as caught:
        check_warehouse(h.warehouse)
    message = str(caught.value)
    assert "\n" not in message and str(h.warehouse) in message
    assert f"python -m flows.rebuild --warehouse {h.warehouse}" in message

    done = subprocess.run([sys.executable, "-m", "flows.rebuild", "--warehouse", str(h.warehouse), "--sources",
                           str(h.sources_file)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"rebuilt {h.warehouse} from the raw archive: 4 archived fetch(es)"), done.stdout
    assert "the damaged file is kept as" in done.stdout
    check_warehouse(h.warehouse)
    assert h.query("select version, change_kind from report_versions where index_no = ? order by 1", [key]) == [
        (1, "new"), (2, "content_changed")]  # its history, from the archive
    assert list(Path(h.warehouse.parent).glob("warehouse.duckdb.damaged-*"))

    summary = h.run(revalidate_after_hours=0)  # the night goes on from the rebuilt file

    counts = summary.sources["a"]
    assert (counts.fetched, counts.not_modified, counts.new, counts.changed) == (0, 3, 0, 0), format_summary(summary)
    assert summary.message is None  # the archive's loaded marks are the rebuild's: nothing to load again
    assert h.query("select status from runs order by started_at") == [("completed",), ("completed",)]
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2, 3)})

