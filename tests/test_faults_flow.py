"""Fault injection through the whole nightly flow: one test per fault a real night meets.

Each test lays a government column over the loopback FaultServer (`FakeSite`), writes a
sources.yaml pointing at it, runs the real flow (in process, or as `python -m
flows.nightly` in a subprocess when the fault is about processes) into a real DuckDB
file under tmp_path, and asserts two things: the outcome the run recorded (summary,
fetch_log, rejects, run_sources, exit code and message), and that no row was lost or
duplicated (`assert_whole`: every report once, with all its children, its versions and
its URLs, and the raw archive agreeing with the warehouse on what is loaded).

The fetch-level behaviour of each network fault is tested in test_fetch.py; here only
what the flow makes of it is.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import duckdb
import pytest
import yaml

import flows.nightly
import flows.reprocess
import flows.runner
import tasks.extract.document
from tasks.extract.keys import canonical_url
import tasks.steps
from tasks.crawl.encoding import decode_html
from tasks.crawl.fetch import Fetcher
from tasks.settings import PROJECT_ROOT
from tasks.sources import load_sources
from tasks.summary import RunSummary, format_summary
from warehouse import connect
from warehouse.schema.tables import data_tables
from tests.lakes import both_backends
from tests.faultserver import (
    PDF_BODY,
    FakeSite,
    FaultServer,
    garbage,
    not_found,
    refused_url,
    report_html,
    report_page,
    truncated,
    unavailable,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

# Small limits so that every fault resolves in a fraction of a second (in process).
FAST = dict(connect_timeout=1.0, read_timeout=2.0, deadline=5.0, retry_times=2, backoff_factor=0.01,
            backoff_jitter=0.01, backoff_max=0.05, retry_after_max=2.0)  # fmt: skip
# The same for `python -m flows.nightly` subprocesses, through tasks/settings.py.
FAST_ENV = {
    "GOVETL_CONNECT_TIMEOUT": "1", "GOVETL_READ_TIMEOUT": "2", "GOVETL_DOWNLOAD_DEADLINE": "5",
    "GOVETL_RETRY_TIMES": "2", "GOVETL_RETRY_BACKOFF_FACTOR": "0.01", "GOVETL_RETRY_BACKOFF_JITTER": "0.01",
    "GOVETL_RETRY_BACKOFF_MAX": "0.05", "GOVETL_RETRY_AFTER_MAX": "2",
}  # fmt: skip

# A driver for subprocess runs: wraps warehouse.writer.load._merge so that, on its Nth call
# (one call per load batch), after the batch's rows are written and BEFORE the
# transaction commits, it touches a marker file, then holds until a release file appears
# (or for a minute). Then runs the real CLI entry point.
#   python -c DRIVER MARKER RELEASE N -- <nightly arguments>
DRIVER = """
import os, sys, time
from pathlib import Path
import warehouse.writer.load as load

marker, release, nth = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
args = sys.argv[sys.argv.index("--") + 1:]
real_merge, calls = load._merge, []

def held_merge(con, pages, batch):
    outcomes = real_merge(con, pages, batch)
    calls.append(len(pages))
    if len(calls) == nth:
        marker.write_text(str(os.getpid()))
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return outcomes

load._merge = held_merge
from flows.nightly import main
sys.exit(main(args))
"""

# An analyst's notebook: a read-only DuckDB connection held until told to close.
ANALYST = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("select count(*) from reports").fetchone()[0], flush=True)
sys.stdin.readline()
con.close()
"""


# --- harness -----------------------------------------------------------------------------
class Harness:
    """One warehouse, one archive and one sources.yaml under tmp_path; runs the flow."""

    def __init__(self, tmp_path: Path, summaries: list[RunSummary], warehouse: str | None = None) -> None:
        self.tmp_path = tmp_path
        self.sources_file = tmp_path / "sources.yaml"
        # A DuckDB file, or a lake (ducklake:postgres:…) under @both_backends.
        self.warehouse: str | Path = warehouse or tmp_path / "data" / "warehouse.duckdb"
        self.archive = tmp_path / "data" / "archive" / "archive.sqlite"
        self._summaries = summaries
        self._held: list[subprocess.Popen] = []

    def close(self) -> None:
        """Kill held runs a failing test left behind (they would wait a minute, then load)."""
        for proc in self._held:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def write_sources(self, *entries: dict) -> None:
        self.sources_file.write_text(yaml.safe_dump({"sources": list(entries)}, allow_unicode=True), encoding="utf-8")

    def run(self, expect: str = "completed", **parameters) -> RunSummary:
        """The nightly flow in this process (fast fetch limits); returns its RunSummary, whose
        status must be `expect` (completed, or partial: both end Completed in Prefect)."""
        rows = flows.nightly.nightly(sources_file=str(self.sources_file), warehouse_path=str(self.warehouse),
                                     **{"archive": str(self.archive.parent), **parameters})  # fmt: skip
        summary = self._summaries[-1]
        assert rows == summary.rows() and summary.status == expect, format_summary(summary)
        return summary

    def cli_args(self, *extra: str) -> list[str]:
        return ["--sources", str(self.sources_file), "--warehouse", str(self.warehouse),
                "--archive", str(self.archive.parent), *extra]

    def env(self, **overrides: str) -> dict[str, str]:
        assert os.environ.get("PREFECT_API_URL"), "the prefect_api fixture exports the session server"
        return os.environ | FAST_ENV | overrides

    def spawn_held(self, nth_load: int, *extra: str, **env: str) -> tuple[subprocess.Popen, Path, Path]:
        """A subprocess run that holds inside its `nth_load` load transaction (see DRIVER).

        Returns the process, the file that releases it and the file its output goes to
        (a file, not a pipe: nobody reads a pipe while it holds, and a full one would block it).
        """
        stamp = time.monotonic_ns()
        marker, release = self.tmp_path / f"held-{stamp}", self.tmp_path / f"release-{stamp}"
        output = self.tmp_path / f"held-{stamp}.log"
        with output.open("w") as sink:
            proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(marker), str(release), str(nth_load), "--",
                                     *self.cli_args(*extra)], cwd=PROJECT_ROOT, env=self.env(**env),
                                    stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip
        self._held.append(proc)
        deadline = time.monotonic() + 60
        while not marker.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail(f"the held run never reached load {nth_load} (exit {proc.returncode}):\n"
                            f"{output.read_text(errors='replace')}")  # fmt: skip
            time.sleep(0.05)
        return proc, release, output

    def cli(self, *extra: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flows.nightly", *self.cli_args(*extra)], cwd=PROJECT_ROOT,
                              env=self.env(**env), capture_output=True, text=True, timeout=timeout)  # fmt: skip

    # -- reading what was stored
    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with connect(self.warehouse, read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def scalar(self, sql: str, params: list | None = None):
        return self.query(sql, params)[0][0]

    def archived(self) -> list[dict]:
        """The archive's fetch log: every fetch with its outcome and whether it is loaded."""
        with sqlite3.connect(f"{self.archive.as_uri()}?mode=ro", uri=True) as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute("select fetch_id, run_id, url, outcome, loaded_run_id from fetches")]

    def checksums(self) -> dict[str, tuple]:
        return {t: self.scalar_row(f"select count(*), sum(hash(t)) from {t} as t") for t in data_tables()}

    def scalar_row(self, sql: str) -> tuple:
        return self.query(sql)[0]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(routes={}) as running:
        yield running


@pytest.fixture
def h(prefect_api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str,
      request: pytest.FixtureRequest) -> Iterator[Harness]:
    """In-process runs use fast fetch limits; every RunSummary the flow publishes is kept.
    The warehouse is a DuckDB file, or a new lake under @both_backends."""
    summaries: list[RunSummary] = []
    real_publish = flows.runner.publish

    def keep_summary(summary: RunSummary, started: float) -> None:
        summaries.append(summary)
        real_publish(summary, started)

    monkeypatch.setattr("flows.stages.Fetcher", partial(Fetcher, **FAST))
    monkeypatch.setattr("flows.runner.publish", keep_summary)
    harness = Harness(tmp_path, summaries, request.getfixturevalue("new_lake")() if backend == "lake" else None)
    yield harness
    harness.close()


def good_site(server: FaultServer, prefix: str, count: int, first: int = 1) -> FakeSite:
    site = FakeSite(server, prefix)
    for n in range(first, first + count):
        site.article(f"{n:04d}.html", report_page(index_no(prefix, n)))
    return site


def index_no(prefix: str, n: int) -> str:
    return f"001{sum(map(ord, prefix)) % 1000:03d}/2023-{n:05d}"


def expected_children(body: bytes, url: str, h: Harness, source: str) -> tuple[int, int, int]:
    """(sections, metrics, ranks) the extractor makes of this page: what a whole report holds."""
    sources = {s.name: s for s in load_sources(h.sources_file)}
    extraction = tasks.extract.document.extract_page(decode_html(body, "text/html").text, url, sources[source])
    return len(extraction.sections), len(extraction.metrics), len(extraction.ranks)


def assert_whole(h: Harness, reports: dict[str, set[str]]) -> None:
    """No row lost or duplicated: exactly `reports` (index_no → its URLs) are stored, each
    once, each with its children, one version per change and one report_urls row per URL;
    nothing hangs off a missing report; the archive and the warehouse agree on what is
    loaded, and every archived fetch is in the warehouse's fetch_log exactly once."""
    stored = dict(h.query("select index_no, count(*) from reports group by index_no"))
    assert stored == {key: 1 for key in reports}
    pairs = h.query("select index_no, url, count(*) from report_urls group by all")
    assert sorted(pairs) == sorted((key, url, 1) for key, urls in reports.items() for url in urls)
    assert h.query("""select r.index_no, r.version, count(v.index_no), max(v.version)
                      from reports r left join report_versions v using (index_no) group by all
                      having count(v.index_no) <> r.version or max(v.version) <> r.version""") == []  # fmt: skip
    for table in ("sections", "metrics", "ranks", "report_versions", "report_urls", "search_sections"):
        orphans = h.scalar(f"select count(*) from {table} t anti join reports r using (index_no)")
        assert orphans == 0, f"{orphans} {table} rows belong to no report"
    assert h.scalar("select count(*) from reports r anti join sections s using (index_no)") == 0
    for table, key in (("sections", "section_id"), ("metrics", "ordinal"), ("ranks", "ordinal")):
        assert h.scalar(f"select count(*) - count(distinct (index_no, {key})) from {table}") == 0
    archived = h.archived()
    assert [f for f in archived if f["outcome"] == "fetched" and f["loaded_run_id"] is None] == []
    loaded_urls = {f["url"] for f in archived if f["outcome"] == "fetched"}
    assert loaded_urls >= {url for urls in reports.values() for url in urls}
    logged = h.query("select fetch_id, count(*) from fetch_log group by fetch_id")
    assert sorted(logged) == sorted((f["fetch_id"], 1) for f in archived)


def children_by_report(h: Harness) -> dict[str, tuple[int, int, int]]:
    rows = h.query("""select r.index_no,
                             (select count(*) from sections s where s.index_no = r.index_no),
                             (select count(*) from metrics m where m.index_no = r.index_no),
                             (select count(*) from ranks k where k.index_no = r.index_no)
                      from reports r""")  # fmt: skip
    return {key: tuple(counts) for key, *counts in rows}


def run_source(h: Harness, source: str) -> dict:
    cols = ["run_id", "source", "discovered", "fetched", "new", "changed", "unchanged", "not_modified", "failed",
            "skipped", "rejected", "error"]  # fmt: skip
    rows = h.query(f"select {', '.join(cols)} from run_sources where source = ? order by run_id", [source])
    return dict(zip(cols, rows[-1]))


# --- 1. a listed page answers 404 --------------------------------------------------------
def test_listed_page_404_is_counted_failed_with_its_reason_and_the_rest_loads(h, server):
    site = good_site(server, "/a", 3)
    gone = site.route("gone.html", not_found)
    h.write_sources(site.source("a"))

    summary = h.run()

    counts = summary.sources["a"]
    assert (counts.discovered, counts.fetched, counts.failed, counts.new, counts.rejected) == (4, 3, 1, 3, 0)
    assert [e for e in counts.errors if server.url(gone) in e and "404" in e], counts.errors
    assert server.url(gone) in format_summary(summary)
    outcome, status, reason = h.query("select outcome, status, reason from fetch_log where url = ?",
                                      [server.url(gone)])[0]  # fmt: skip
    assert (outcome, status) == ("http_error", 404) and reason
    row = run_source(h, "a")
    assert (row["failed"], row["new"]) == (1, 3) and server.url(gone) in row["error"]
    assert h.scalar("select status from runs") == "completed"
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2, 3)})


# --- 2. a report link serves a PDF -------------------------------------------------------
def test_pdf_report_link_is_skipped_never_parsed_nor_rejected(h, server, monkeypatch):
    site = good_site(server, "/a", 2)
    site.article("report.pdf", PDF_BODY, "application/pdf")
    site.article("disguised.html", PDF_BODY, "text/html; charset=utf-8")  # a PDF labelled as HTML
    h.write_sources(site.source("a"))
    parsed: list[str] = []
    real_page_record = tasks.steps.page_record
    monkeypatch.setattr("tasks.steps.page_record",
                        lambda fetch, body, source: parsed.append(fetch.url) or real_page_record(fetch, body, source))

    summary = h.run()

    counts = summary.sources["a"]
    assert (counts.discovered, counts.fetched, counts.skipped, counts.failed) == (4, 2, 2, 0)
    assert (counts.new, counts.rejected) == (2, 0)
    pdf_urls = {site.url("report.pdf"), site.url("disguised.html")}
    assert not pdf_urls & set(parsed) and len(parsed) == 2
    assert h.query("select url, outcome from fetch_log where outcome <> 'fetched' order by url") == sorted(
        (url, "non_html") for url in pdf_urls)
    assert h.query("select * from rejects") == []  # in particular no extract_error
    assert h.scalar("select count(*) from report_urls where url in (select unnest(?))", [sorted(pdf_urls)]) == 0
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2)})


# --- 3. a page with no 索引号 --------------------------------------------------------------
def test_page_without_index_no_is_loaded_under_a_key_of_its_own_and_never_twice(h, server):
    site = good_site(server, "/a", 2)
    nameless = site.article("nameless.html", report_page(None), validators=False)  # refetched in full each time
    h.write_sources(site.source("a"))

    first = h.run()
    second = h.run(revalidate_after_hours=0)

    assert (first.sources["a"].new, first.sources["a"].rejected) == (3, 0)  # a report, not a reject
    assert server.hits(nameless) == 2 and second.sources["a"].fetched == 1  # the page really came again
    assert (second.sources["a"].new, second.sources["a"].changed, second.sources["a"].unchanged) == (0, 0, 1)
    key = h.query("select index_no, key_kind from reports where key_kind <> 'index_no'")
    assert key == [(canonical_url(server.url(nameless)), "url")]  # no CMS document id in the URL: the URL itself
    assert h.query("select count(*) from rejects") == [(0,)]
    assert_whole(h, {index_no("/a", 1): {site.url("0001.html")}, index_no("/a", 2): {site.url("0002.html")},
                     key[0][0]: {server.url(nameless)}})  # fmt: skip


def test_an_empty_page_is_quarantined_once_across_runs(h, server):
    site = good_site(server, "/a", 2)
    empty = site.article("empty.html", b"<html><head><title>x</title></head><body><div id='zoom'></div></body></html>",
                         validators=False)  # fmt: skip
    h.write_sources(site.source("a"))

    first = h.run()
    h.run(revalidate_after_hours=0)

    assert (first.sources["a"].new, first.sources["a"].rejected) == (2, 1)
    assert [e for e in first.sources["a"].errors if "empty" in e and server.url(empty) in e]
    rejects = h.query("select url, reason, run_id from rejects")
    assert rejects == [(server.url(empty), "empty", first.run_id)]
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2)})


# --- 4. two URLs, one 索引号 --------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [100, 1], ids=["one-batch", "separate-batches"])
def test_two_urls_with_one_index_no_are_one_report_with_two_urls(h, server, batch_size):
    site = good_site(server, "/a", 1)
    shared = report_page("001002/2023-00099")
    site.article("column-a.html", shared)
    site.article("column-b.html", shared)
    h.write_sources(site.source("a"))

    summary = h.run(batch_size=batch_size)
    again = h.run(revalidate_after_hours=0, batch_size=batch_size)

    counts = summary.sources["a"]
    assert (counts.fetched, counts.new, counts.changed, counts.rejected) == (3, 2, 0, 0)
    assert counts.new + counts.unchanged == 3
    assert (again.sources["a"].not_modified, again.sources["a"].new, again.sources["a"].changed) == (3, 0, 0)
    assert h.scalar("select count(*) from report_versions where index_no = '001002/2023-00099'") == 1
    assert_whole(h, {index_no("/a", 1): {site.url("0001.html")},
                     "001002/2023-00099": {site.url("column-a.html"), site.url("column-b.html")}})


# --- 5. a page changes between runs ------------------------------------------------------
def test_changed_page_is_a_new_version_and_unchanged_pages_cost_a_304(h, server):
    site = good_site(server, "/a", 3)
    h.write_sources(site.source("a"))
    h.run()
    key = index_no("/a", 2)
    edited = report_page(key, extra="补充说明：全年新增养老床位100张。")
    site.set_body("0002.html", edited)

    summary = h.run(revalidate_after_hours=0)

    counts = summary.sources["a"]
    assert (counts.changed, counts.new, counts.fetched, counts.not_modified, counts.unchanged) == (1, 0, 1, 2, 0)
    assert h.query("select version, change_kind from report_versions where index_no = ? order by version",
                   [key]) == [(1, "new"), (2, "content_changed")]  # fmt: skip
    version, body, run_id = h.query("select version, body_text, run_id from reports where index_no = ?", [key])[0]
    assert version == 2 and "补充说明" in body and run_id == summary.run_id
    assert h.scalar("select count(*) from metrics where index_no = ? and value_norm = 100", [key]) == 1
    assert children_by_report(h)[key] == expected_children(edited, site.url("0002.html"), h, "a")
    assert set(site.article_hits().values()) == {2}  # every page asked twice, two of them answered 304
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2, 3)})


# --- 6. the listing changes order --------------------------------------------------------
def test_reordered_listing_fetches_nothing_again_and_adds_nothing(h, server):
    site = good_site(server, "/a", 4)
    h.write_sources(site.source("a"))
    h.run()
    before = h.checksums()
    site.paths.reverse()  # same links, another order (a CMS re-sorting by update time)

    summary = h.run()

    counts = summary.sources["a"]
    assert (counts.discovered, counts.fetched, counts.not_modified, counts.new, counts.changed) == (4, 0, 0, 0, 0)
    assert set(site.article_hits().values()) == {1} and server.hits(site.listing_path) == 2
    assert h.checksums() == before
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2, 3, 4)})


# --- 7. a dead source beside a healthy one -----------------------------------------------
def test_dead_sources_fail_alone_and_the_healthy_one_loads(h, server):
    healthy = good_site(server, "/a", 3)
    down = FakeSite(server, "/b")
    server.routes[down.listing_path] = unavailable  # 503 whatever we do
    refused = {"name": "refused", "region": "无县", "listing_urls": [refused_url()], "allowed_hosts": ["127.0.0.1"],
               "rate_limit_per_second": 0}  # fmt: skip
    h.write_sources(healthy.source("healthy"), down.source("down"), refused)

    summary = h.run(expect="partial")  # issue 17.5: some sources failed

    assert summary.sources["healthy"].new == 3 and summary.sources["healthy"].failed == 0
    assert server.hits(down.listing_path) == 1 + FAST["retry_times"]
    dead = (("down", server.url(down.listing_path), "503"), ("refused", refused["listing_urls"][0], ""))
    for name, listing, why in dead:
        counts = summary.sources[name]
        assert (counts.failed, counts.discovered, counts.fetched, counts.new) == (1, 0, 0, 0), name
        assert [e for e in counts.errors if listing in e and why in e], counts.errors
        row = run_source(h, name)
        assert row["failed"] == 1 and listing in row["error"], row
        logged = h.query("select outcome, reason from fetch_log where url = ?", [listing])
        assert len(logged) == 1 and logged[0][0] in ("http_error", "network_error") and logged[0][1], logged
    assert h.query("select status, failed, new from runs") == [("partial", 2, 3)]
    assert_whole(h, {index_no("/a", n): {healthy.url(f"{n:04d}.html")} for n in (1, 2, 3)})


# --- 8. bad pages among good ones --------------------------------------------------------
def test_bad_pages_among_good_ones_never_fail_the_run(h, server, monkeypatch):
    site = good_site(server, "/a", 3)
    site.route("garbage.html", garbage)  # 4 KB of random bytes labelled text/html
    site.route("truncated.html", truncated)  # Content-Length 10000, 100 bytes, then FIN
    site.article("crashes.html", report_page("001002/2023-00666"))  # the whole extractor raises
    site.article("warns.html", report_page("001002/2023-00777"))  # one extractor stage raises
    h.write_sources(site.source("a"))
    real_extract, real_ranks = tasks.extract.document.extract_page, tasks.extract.document.extract_ranks

    def extract_page(html, url=None, source=None):
        if url and url.endswith("/crashes.html"):
            raise RecursionError("maximum recursion depth exceeded")
        return real_extract(html, url, source)

    def extract_ranks(outline, index_no):
        if index_no == "001002/2023-00777":
            raise ValueError("a rank rule broke on this page")
        return real_ranks(outline, index_no)

    monkeypatch.setattr("tasks.pages.extract_page", extract_page)
    monkeypatch.setattr("tasks.extract.document.extract_ranks", extract_ranks)

    summary = h.run()

    counts = summary.sources["a"]
    assert (counts.discovered, counts.fetched, counts.failed, counts.new, counts.rejected) == (7, 6, 1, 4, 2)
    reasons = dict(h.query("select url, reason from rejects"))
    assert reasons == {site.url("garbage.html"): "not_html", site.url("crashes.html"): "extract_error"}
    assert "RecursionError" in h.scalar("select detail from rejects where reason = 'extract_error'")
    assert h.query("select outcome from fetch_log where url = ?", [site.url("truncated.html")]) == [("network_error",)]
    assert h.scalar("select count(*) from sections where index_no = '001002/2023-00777'") > 0
    assert h.query("select status, rejected, failed from runs") == [("completed", 2, 1)]
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2, 3)}
                 | {"001002/2023-00777": {site.url("warns.html")}})


@both_backends
def test_a_page_the_loader_cannot_store_is_rejected_alone_and_never_fails_the_run(h, server):
    site = good_site(server, "/a", 3)
    poison = report_html("001002/2023-00888", "县民政局2023年工作总结", [
        "一、主要工作",
        "（一）社会救助。全县低保工作排名全市第99999999999位，低保对象5661户8802人。",
    ])
    site.article("poison.html", poison)
    h.write_sources(site.source("a"))

    summary = h.run()  # one batch: the good pages share the poison page's transaction

    counts = summary.sources["a"]
    assert (counts.fetched, counts.new, counts.rejected) == (4, 3, 1)
    assert h.query("select url, reason from rejects") == [(site.url("poison.html"), "load_error")]
    assert h.run().sources["a"].rejected == 0  # quarantined once; the next run is clean
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2, 3)})


# --- 9. kill -9 in the middle of a load --------------------------------------------------
@both_backends
def test_kill_9_inside_a_load_leaves_whole_reports_and_the_next_run_finishes_from_the_archive(h, server):
    site = good_site(server, "/a", 6)
    h.write_sources(site.source("a"))
    expected = {index_no("/a", n): expected_children(report_page(index_no("/a", n)), site.url(f"{n:04d}.html"), h, "a")
                for n in range(1, 7)}  # fmt: skip

    # a transaction per batch of 2 pages: batch 1 committed, batch 2 written, not committed
    proc, _, _ = h.spawn_held(2, "--batch-size", "2", GOVETL_LOAD_TRANSACTION_ROWS="1")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    loaded = {f["url"] for f in h.archived() if f["loaded_run_id"]}
    stored = children_by_report(h)
    assert len(stored) == 2 and len(loaded) == 2  # whole batch 1, nothing of batch 2
    assert {u for (u,) in h.query("select url from report_urls")} == loaded  # archive and warehouse agree
    assert stored == {key: expected[key] for key in stored}  # no half-loaded report
    assert h.scalar("select count(*) from report_versions") == 2 and h.scalar("select count(*) from loads") == 1
    assert len([f for f in h.archived() if f["outcome"] == "fetched"]) == 6  # every body was kept

    summary = h.run()

    counts = summary.sources["a"]
    assert (counts.fetched, counts.new, counts.changed, counts.unchanged) == (0, 4, 0, 0)
    assert set(site.article_hits().values()) == {1}  # loaded from the archive, not the network
    assert children_by_report(h) == expected
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in range(1, 7)})


@both_backends
def test_kill_9_inside_a_load_does_not_leave_a_run_running_forever(h, server):
    site = good_site(server, "/a", 2)
    h.write_sources(site.source("a"))
    proc, _, _ = h.spawn_held(1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    summary = h.run()

    statuses = dict(h.query("select run_id, status from runs"))
    assert statuses.pop(summary.run_id) == "completed"
    assert list(statuses.values()) == ["failed"], statuses  # the killed run, closed by the next one


# --- 10. two runs at once on one warehouse -----------------------------------------------
@both_backends
def test_second_concurrent_run_waits_then_exits_naming_the_holder(h, server):
    site = good_site(server, "/a", 3)
    h.write_sources(site.source("a"))
    first, release, first_output = h.spawn_held(1)  # holds the run lock, inside its load

    started = time.monotonic()
    second = h.cli(GOVETL_RUN_LOCK_TIMEOUT="2")
    waited = time.monotonic() - started
    release.touch()
    first.wait(timeout=60)

    assert first.returncode == 0, first_output.read_text(errors="replace")
    assert second.returncode != 0 and waited >= 2
    assert "another run is using" in second.stderr and f"pid {first.pid} on " in second.stderr, second.stderr
    assert str(h.warehouse) in second.stderr
    assert server.hits(site.listing_path) == 1 and set(site.article_hits().values()) == {1}  # second fetched nothing
    assert h.query("select status, new from runs") == [("completed", 3)]  # second wrote nothing
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2, 3)})


# --- 11. the warehouse held open by an analyst -------------------------------------------
def test_locked_warehouse_fails_the_run_clearly_and_keeps_what_it_fetched(h, server):
    site = good_site(server, "/a", 4)
    h.write_sources(site.source("a"))
    connect(h.warehouse).close()  # an existing, empty warehouse
    analyst = subprocess.Popen([sys.executable, "-c", ANALYST, str(h.warehouse)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert analyst.stdout.readline().strip() == "0"
        started = time.monotonic()
        blocked = h.cli(GOVETL_WAREHOUSE_LOCK_TIMEOUT="1.5")
        waited = time.monotonic() - started
    finally:
        analyst.communicate("close\n", timeout=10)

    assert blocked.returncode != 0 and waited >= 1.5
    assert "is locked by process PID" in blocked.stderr and f"PID {analyst.pid}" in blocked.stderr, blocked.stderr
    assert str(h.warehouse) in blocked.stderr
    fetched = [f for f in h.archived() if f["outcome"] == "fetched"]
    assert len(fetched) == 4 and not [f for f in fetched if f["loaded_run_id"]]  # kept, waiting in the archive
    assert h.query("select count(*) from reports") == [(0,)]

    summary = h.run()

    counts = summary.sources["a"]
    assert (counts.fetched, counts.new) == (0, 4)
    assert set(site.article_hits().values()) == {1}
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2, 3, 4)})


# --- 12. hostile content is data ---------------------------------------------------------
HOSTILE_TITLE = ("县民政局2023年工作总结 \"双引号\" '单引号' '; drop table reports; -- "
                 "<script>alert(\"x\")</script> \x01\x07\x1b\x7f 结束")  # fmt: skip
HOSTILE_PARAGRAPH = ("Robert'); DROP TABLE reports; -- \"quoted\" \\\\ backslash "
                     "<script>document.write('pwned')</script> <img src=x onerror=alert(1)> "
                     "控制字符\x02\x03\x08\x1a\x7f ${env:HOME} {{7*7}} %s %n 结束。")  # fmt: skip
LONG_PARAGRAPH = "继续推进社会救助体系建设，完善兜底保障机制，" * 33_000  # about 2.1 MB of UTF-8
HOSTILE_INDEX_NO = "001002/2023-00042"


def test_hostile_content_is_stored_verbatim_as_data(h, server):
    site = good_site(server, "/a", 1)
    body = report_html(HOSTILE_INDEX_NO, HOSTILE_TITLE, ["一、主要工作", HOSTILE_PARAGRAPH, LONG_PARAGRAPH])
    assert len(body) > 2_000_000
    site.article("hostile.html", body)
    h.write_sources(site.source("a"))

    summary = h.run()

    assert (summary.sources["a"].new, summary.sources["a"].rejected) == (2, 0)
    title, text = h.query("select title, body_text from reports where index_no = ?", [HOSTILE_INDEX_NO])[0]
    assert title == HOSTILE_TITLE
    lines = text.split("\n")
    assert HOSTILE_PARAGRAPH in lines and LONG_PARAGRAPH in lines
    assert h.query("select title, body_text from report_version_texts where index_no = ?",
                   [HOSTILE_INDEX_NO]) == [(title, text)]  # fmt: skip
    section_texts = [t for (t,) in h.query("select text from sections where index_no = ?", [HOSTILE_INDEX_NO])]
    assert any(LONG_PARAGRAPH in t for t in section_texts) and any(HOSTILE_PARAGRAPH in t for t in section_texts)
    assert h.scalar("select count(*) from reports") == 2  # the table is there, nothing was executed
    assert_whole(h, {index_no("/a", 1): {site.url("0001.html")}, HOSTILE_INDEX_NO: {site.url("hostile.html")}})


# --- a source switched off in sources.yaml -----------------------------------------------
def test_a_switched_off_source_keeps_its_region_when_run_by_name_and_when_reprocessed(h, server, monkeypatch):
    site = good_site(server, "/a", 2)
    h.write_sources(site.source("a", enabled=False))

    assert h.run().sources == {}  # off: not crawled
    h.run(only=["a"])  # named: crawled, and loaded with its own configuration
    assert h.query("select distinct source, region from reports") == [("a", "a县")]

    monkeypatch.setattr(tasks.extract.document, "EXTRACTOR_VERSION", "99.0.0")  # rules changed: every report is rewritten
    flows.reprocess.reprocess(sources_file=str(h.sources_file), warehouse_path=str(h.warehouse))
    assert h.query("select distinct source, region, extractor_version from reports") == [("a", "a县", "99.0.0")]
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2)})


# --- the crawl frontier: nothing discovered is lost between runs (issue 17.1, 16.4-5) -----
import threading  # noqa: E402  (this section was appended; its imports and helpers live with it)
from datetime import timedelta  # noqa: E402

import tasks.summary  # noqa: E402
from tests.faultserver import FaultRequestHandler  # noqa: E402


class PagedSite(FakeSite):
    """A FakeSite whose column runs over listing pages of `per_page` reports each:
    list/index.html, list/index_2.html …, each linking the next with 下一页 (a static export).
    `listing_faults[n]` serves page n with another handler (a 503 …)."""

    def __init__(self, server: FaultServer, prefix: str, per_page: int, max_pages: int = 30) -> None:
        super().__init__(server, prefix)
        self.per_page = per_page
        self.listing_faults: dict[int, object] = {}
        for number in range(1, max_pages + 1):
            server.routes[self.page_path(number)] = partial(self._page, number)

    def page_path(self, number: int) -> str:
        return self.listing_path if number == 1 else f"{self.prefix}/list/index_{number}.html"

    def page_hits(self) -> dict[int, int]:
        pages = range(1, len(self.paths) // self.per_page + 2)
        return {n: self.server.hits(self.page_path(n)) for n in pages if self.server.hits(self.page_path(n))}

    def _page(self, number: int, req: FaultRequestHandler, hit: int) -> None:
        if number in self.listing_faults:
            return self.listing_faults[number](req, hit)  # type: ignore[operator]
        chunk = self.paths[(number - 1) * self.per_page:number * self.per_page]
        if not chunk:
            return not_found(req, hit)
        rows = "".join(f'<li><a href="{path}">{path.rsplit("/", 1)[1]} 县民政局工作总结</a><span>2024-02-{n % 28 + 1:02d}</span></li>'
                       for n, path in enumerate(chunk))  # fmt: skip
        first = '<a href="index.html">首页</a>' if number > 1 else ""
        more = f'<a href="index_{number + 1}.html">下一页</a>' if len(self.paths) > number * self.per_page else ""
        req.send(200, f'<html><head><meta charset="utf-8"></head><body><ul class="list">{rows}</ul>'
                      f'<div class="pager">{first}{more}</div></body></html>'.encode())  # fmt: skip


def paged_site(server: FaultServer, prefix: str, count: int, per_page: int) -> PagedSite:
    site = PagedSite(server, prefix, per_page)
    for n in range(1, count + 1):
        site.article(f"{n:04d}.html", report_page(index_no(prefix, n)))
    return site


def minimal_source(site: FakeSite, name: str, **extra: object) -> dict:
    """The entry a new user writes: name, region, listing_urls (plus loopback pacing): no
    article_url_pattern, no next_page_pattern."""
    return {k: v for k, v in site.source(name, **extra).items() if k != "article_url_pattern"}


def every_report(site: FakeSite, prefix: str, count: int) -> dict[str, set[str]]:
    return {index_no(prefix, n): {site.url(f"{n:04d}.html")} for n in range(1, count + 1)}


def test_a_column_whose_links_have_few_digits_is_discovered_fully_from_a_minimal_entry(h, server):
    site = PagedSite(server, "/d", per_page=5)
    for n in range(1, 13):  # /d/art/1.html … /d/art/12.html: no 4-digit run anywhere in the path
        site.article(f"{n}.html", report_page(index_no("/d", n)))
    h.write_sources(minimal_source(site, "d"))

    summary = h.run()

    counts = summary.sources["d"]
    assert (counts.discovered, counts.fetched, counts.new, counts.failed) == (12, 12, 12, 0), format_summary(summary)
    assert counts.warnings == [] and "3 listing page(s) read" in counts.discovery
    assert "read to the end of the pagination" in format_summary(summary)
    assert_whole(h, {index_no("/d", n): {site.url(f"{n}.html")} for n in range(1, 13)})
    again = h.run()  # nothing new: the first listing page is enough to know it
    assert (again.sources["d"].fetched, again.sources["d"].new) == (0, 0)
    assert site.page_hits() == {1: 2, 2: 1, 3: 1}


def test_ctrl_c_in_the_middle_of_a_fetch_then_a_rerun_brings_every_report_back(h, server):
    site = paged_site(server, "/a", 9, per_page=3)  # three listing pages
    held, release = threading.Event(), threading.Event()
    serve_report = server.routes[site.path("0008.html")]

    def hold_first_request(req: FaultRequestHandler, hit: int) -> None:  # the fetch the operator interrupts
        if hit == 1:
            held.set()
            release.wait(30)
            return req.reset_connection()
        serve_report(req, hit)

    server.routes[site.path("0008.html")] = hold_first_request
    h.write_sources(minimal_source(site, "a"))
    with (h.tmp_path / "interrupted.log").open("w") as sink:
        # One request at a time to the (unpaced) host: page 9 waits for page 8
        proc = subprocess.Popen([sys.executable, "-m", "flows.nightly", *h.cli_args()], cwd=PROJECT_ROOT,
                                env=h.env(GOVETL_CRAWL_CONNECTIONS_PER_HOST="1"), stdout=sink,
                                stderr=subprocess.STDOUT)  # fmt: skip
    h._held.append(proc)
    try:
        assert held.wait(60), "the run never reached the held fetch"
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C while page 8 of 9 is downloading
        proc.wait(timeout=60)
    finally:
        release.set()
    assert proc.returncode != 0
    assert server.hits(site.path("0009.html")) == 0  # discovered, never fetched: only the frontier remembers it
    assert h.scalar("select count(*) from reports") < 9 if h.warehouse.exists() else True

    summary = h.run()

    counts = summary.sources["a"]
    assert (counts.new, counts.failed) == (9, 0), format_summary(summary)
    assert "left by earlier runs fetched first" in counts.discovery
    assert server.hits(site.path("0009.html")) == 1
    assert_whole(h, every_report(site, "/a", 9))
    again = h.run()
    assert (again.sources["a"].fetched, again.sources["a"].new) == (0, 0)


def test_a_listing_page_that_fails_once_is_read_again_next_run_and_its_reports_arrive(h, server):
    site = paged_site(server, "/a", 10, per_page=2)
    site.listing_faults[3] = lambda req, hit: unavailable(req, hit) if hit <= 1 + FAST["retry_times"] else (
        site.listing_faults.pop(3), site._page(3, req, hit))  # fmt: skip
    h.write_sources(minimal_source(site, "a"))

    first = h.run()

    counts = first.sources["a"]
    assert (counts.new, counts.failed) == (4, 1), format_summary(first)
    assert [e for e in counts.errors if site.page_path(3) in e and "503" in e], counts.errors
    assert "the next run reads them again" in counts.discovery

    second = h.run()

    counts = second.sources["a"]
    assert (counts.new, counts.failed, counts.warnings) == (6, 0, []), format_summary(second)
    assert "left by an earlier run" in counts.discovery
    assert_whole(h, every_report(site, "/a", 10))
    third = h.run()
    assert third.sources["a"].fetched == 0 and site.page_hits()[1] == 3  # steady state: page 1 read, nothing else new


def test_a_column_longer_than_max_listing_pages_is_discovered_over_successive_runs(h, server):
    site = paged_site(server, "/a", 14, per_page=2)  # 7 listing pages
    h.write_sources(minimal_source(site, "a", max_listing_pages=3))
    loaded: list[int] = []
    for run in range(3):
        summary = h.run()
        counts = summary.sources["a"]
        loaded.append(h.scalar("select count(*) from reports"))
        if run < 2:
            assert [w for w in counts.warnings if "max_listing_pages 3" in w and "the next run continues at" in w], \
                format_summary(summary)
            assert "max_listing_pages 3" in format_summary(summary)
        else:
            assert counts.warnings == [], format_summary(summary)
    assert loaded == [6, 10, 14]
    assert max(site.page_hits().values()) == 3 and site.page_hits()[7] == 1  # page 1 each run; the tail once
    assert_whole(h, every_report(site, "/a", 14))


def test_a_404_page_is_not_requested_again_before_its_back_off_and_is_told_from_failures(h, server):
    site = good_site(server, "/a", 3)
    gone = site.route("gone.html", not_found)
    h.write_sources(site.source("a", gone_recheck_after_days=10))

    first = h.run()

    counts = first.sources["a"]
    assert (counts.failed, counts.gone) == (1, 0)
    assert [e for e in counts.errors if server.url(gone) in e and "404" in e and "re-checked after 10 days" in e]
    site.route("0002.html", not_found)  # a loaded page deleted from the site

    second = h.run(revalidate_after_hours=0)

    counts = second.sources["a"]
    assert server.hits(gone) == 1  # not asked again
    assert (counts.failed, counts.gone, counts.not_modified) == (1, 1, 2), format_summary(second)
    third = h.run(revalidate_after_hours=0)

    counts = third.sources["a"]
    assert server.hits(gone) == 1 and server.hits(site.path("0002.html")) == 2
    assert (counts.failed, counts.gone) == (0, 2), format_summary(third)
    text = format_summary(third)
    assert "gone, not requested before their re-check (2)" in text and server.url(gone) in text
    assert "problems" not in text
    assert run_source(h, "a")["failed"] == 0
    (due,) = {link.split("re-checked from ")[1] for link in counts.gone_links if server.url(gone) in link}
    assert due == f"{first.started_at + timedelta(days=10):%Y-%m-%d}"


def test_a_listing_with_no_article_link_or_fewer_links_than_it_declares_is_a_warning(h, server):
    server.routes["/e/list/index.html"] = lambda req, hit: req.send(
        200, '<html><body><div class="nav"><a href="/e/a.html">首页</a><a href="/e/b.html">政务公开</a></div>'
             '<div id="list"></div><script src="/e/list.js"></script></body></html>'.encode())  # fmt: skip
    empty = {"name": "empty", "region": "空县", "listing_urls": [server.url("/e/list/index.html")],
             "allowed_hosts": ["127.0.0.1"], "rate_limit_per_second": 0}  # fmt: skip
    short = good_site(server, "/s", 3)

    def declared(req: FaultRequestHandler, hit: int) -> None:
        body = ('<html><body><ul class="list">' + "".join(
            f'<li><a href="{p}">报告{i}</a><span>2024-01-0{i + 1}</span></li>' for i, p in enumerate(short.paths))
            + "</ul><p>共 5 条</p></body></html>")  # … of five declared
        req.send(200, body.encode())

    server.routes[short.listing_path] = declared
    h.write_sources(empty, minimal_source(short, "short"))

    summary = h.run()

    text, markdown = format_summary(summary), tasks.summary.summary_markdown(summary)
    assert summary.sources["empty"].warnings == [
        f"listing page {server.url('/e/list/index.html')} yields no article link "
        "(set article_url_pattern if its links are not dated list items)"]
    assert summary.sources["short"].warnings == ["the listing declares 5 records; 3 article links found"]
    assert summary.sources["short"].new == 3
    for shown in (text, markdown):
        assert "yields no article link" in shown and "declares 5 records; 3 article links found" in shown


def test_every_reject_is_listed_by_url_and_reason_not_the_first_twenty(h, server):
    site = good_site(server, "/a", 2)
    for n in range(25):
        site.article(f"bare-{n:02d}.html", b"<html><head><meta charset='utf-8'></head><body></body></html>")
    h.write_sources(site.source("a"))

    summary = h.run()

    text = format_summary(summary)
    assert summary.sources["a"].rejected == 25
    for n in range(25):
        assert f"a: {site.url(f'bare-{n:02d}.html')}: rejected:" in text
    assert text.index("TOTAL") < text.index("problems")  # the counts stay on top


# --- nothing loaded empty or truncated; damage named and healed; honest run states (issue 17.3-6)
import random  # noqa: E402
import shutil  # noqa: E402

from prefect.exceptions import FailedRun  # noqa: E402

from tests.faultserver import (CAP_FOR_TESTS, longer_than_declared, not_modified_unasked, oversized,  # noqa: E402
                               stub)  # fmt: skip


def test_redirect_stubs_are_followed_to_their_article_and_a_stub_off_site_is_a_failure(h, server):
    site = good_site(server, "/a", 1)
    for n in (2, 3):
        server.routes[f"/a/real/{n}.html"] = partial(lambda body, req, hit: req.send(200, body),
                                                     report_page(index_no("/a", n)))  # fmt: skip
    site.route("moved-2.html", stub('<meta http-equiv="refresh" content="0;url=/a/real/2.html">'))
    site.route("moved-3.html", stub(body="<script>window.location.href='/a/real/3.html';</script>"))
    site.route("moved-away.html", stub('<meta http-equiv="refresh" content="0;url=http://localhost:{port}/a/real/2.html">'))
    h.write_sources(site.source("a"))

    summary = h.run()

    counts = summary.sources["a"]
    assert (counts.fetched, counts.new, counts.rejected, counts.failed) == (3, 3, 0, 1), format_summary(summary)
    assert [e for e in counts.errors if site.url("moved-away.html") in e and "allowed_hosts" in e]
    logged = dict(h.query("select url, final_url from fetch_log where outcome = 'fetched'"))
    assert logged[site.url("moved-2.html")] == server.url("/a/real/2.html")  # the article's URL is the fetch's
    assert logged[site.url("moved-3.html")] == server.url("/a/real/3.html")
    assert h.scalar("select count(*) from rejects") == 0  # no stub "states no 索引号"
    assert h.query("select outcome from fetch_log where url = ?", [site.url("moved-away.html")]) == [("redirect_blocked",)]
    assert sorted(h.query("select index_no, url from report_urls")) == [
        (index_no("/a", 1), site.url("0001.html")), (index_no("/a", 2), server.url("/a/real/2.html")),
        (index_no("/a", 3), server.url("/a/real/3.html"))]  # the article's URL, not the stub's
    assert [f for f in h.archived() if f["outcome"] == "fetched" and not f["loaded_run_id"]] == []


def test_a_304_nobody_asked_for_is_a_failure_every_run_never_not_modified(h, server):
    site = good_site(server, "/a", 2)
    site.route("cached.html", not_modified_unasked)
    h.write_sources(site.source("a"))

    first, second = h.run(), h.run()

    for summary in (first, second):
        counts = summary.sources["a"]
        assert (counts.failed, counts.not_modified) == (1, 0), format_summary(summary)
        assert [e for e in counts.errors if site.url("cached.html") in e and "no validators" in e]
    assert server.hits(site.path("cached.html")) == 2  # asked again: a failure is retried
    assert h.query("select outcome, status from fetch_log where url = ?", [site.url("cached.html")]) == [
        ("http_error", 304), ("http_error", 304)]
    assert_whole(h, every_report(site, "/a", 2))


def test_a_page_longer_than_its_content_length_is_never_loaded_cut(h, server):
    site = good_site(server, "/a", 2)
    site.route("cut.html", longer_than_declared)
    h.write_sources(site.source("a"))

    summary = h.run()

    counts = summary.sources["a"]
    assert (counts.fetched, counts.new, counts.failed, counts.rejected) == (2, 2, 1, 0), format_summary(summary)
    ((outcome, reason),) = h.query("select outcome, reason from fetch_log where url = ?", [site.url("cut.html")])
    assert outcome == "network_error" and "truncated" in reason and "Content-Length said 120" in reason
    assert_whole(h, every_report(site, "/a", 2))


def test_a_page_nested_deeper_than_libxml2_reads_loads_whole(h, server):
    # 5,000 nested <div>s: libxml2 stops at 2,048 levels and drops the rest; the page used to
    # load with a 73-character body. It is read again with lexbor (tasks/extract/deep.py).
    site = good_site(server, "/a", 1)
    plain = report_page(index_no("/a", 2)).decode()
    site.article("0002.html", plain.replace('<div id="zoom">', "<div>" * 5000 + '<div id="zoom">')
                 .replace("</div></body>", "</div>" + "</div>" * 5000 + "</body>").encode())  # fmt: skip
    h.write_sources(site.source("a"))

    summary = h.run()

    assert (summary.sources["a"].new, summary.sources["a"].rejected) == (2, 0), format_summary(summary)
    bodies = dict(h.query("select index_no, body_text from reports"))
    assert bodies[index_no("/a", 2)] == bodies[index_no("/a", 1)]
    assert "低保对象5661户8802人" in bodies[index_no("/a", 2)]
    children = children_by_report(h)
    assert children[index_no("/a", 2)] == children[index_no("/a", 1)] == expected_children(
        plain.encode(), site.url("0002.html"), h, "a")
    assert_whole(h, every_report(site, "/a", 2))


def test_a_size_cap_that_bites_is_a_warning_naming_the_page(h, server, monkeypatch):
    monkeypatch.setattr("flows.stages.Fetcher", partial(Fetcher, **FAST, max_bytes=CAP_FOR_TESTS))
    site = good_site(server, "/a", 1)
    site.route("huge.html", oversized)
    h.write_sources(site.source("a"))

    summary = h.run()

    (warning,) = summary.sources["a"].warnings
    assert warning.startswith("size cap: 1 page(s)") and site.url("huge.html") in warning
    assert "size cap" in format_summary(summary) and "size cap" in flows.runner.report_markdown(summary)


def test_a_new_warehouse_beside_an_archive_that_says_loaded_gets_every_page_again(h, server):
    site = good_site(server, "/a", 4)
    h.write_sources(site.source("a"))
    first = h.run()
    assert "new warehouse" in first.message and "new raw archive" in first.message
    for path in h.warehouse.parent.glob("warehouse*"):  # the warehouse is lost (or moved: a typo in the path)
        path.unlink()

    summary = h.run()

    counts = summary.sources["a"]
    assert (counts.fetched, counts.new) == (0, 4), format_summary(summary)  # from the archive, not the network
    assert "the warehouse has no record of the 1 run(s) that loaded 4 archived fetch(es)" in summary.message
    assert "new warehouse" in summary.message and "new raw archive" not in summary.message
    assert set(site.article_hits().values()) == {1}
    assert_whole(h, every_report(site, "/a", 4))  # the first run's fetch log too
    assert h.run().message is None  # and the next run has nothing to say


def test_a_replaced_archive_cannot_reuse_fetch_ids_the_warehouse_holds(h, server):
    site = good_site(server, "/a", 3)
    h.write_sources(site.source("a"))
    h.run()
    old_ids = {f["fetch_id"] for f in h.archived()}
    for path in h.archive.parent.glob("archive.sqlite*"):  # as `python -m tasks.crawl.archive set-aside` does
        path.rename(path.with_name(path.name.replace("archive.sqlite", "archive.sqlite.damaged-1")))

    summary = h.run()

    assert (summary.sources["a"].fetched, summary.sources["a"].unchanged) == (3, 3)
    new_ids = {f["fetch_id"] for f in h.archived()}
    assert new_ids and not new_ids & old_ids and min(new_ids) > max(old_ids)
    logged = dict(h.query("select fetch_id, count(*) from fetch_log group by fetch_id"))
    assert set(logged) == old_ids | new_ids and set(logged.values()) == {1}  # every fetch of both archives, once


def test_the_snapshot_records_the_latest_run_even_when_no_data_changed(h, server):
    site = good_site(server, "/a", 2)
    h.write_sources(site.source("a"))
    runs = [h.run().run_id, h.run().run_id]  # the second writes no data
    snapshot = h.warehouse.with_name("warehouse.snapshot.duckdb")
    with duckdb.connect(str(snapshot), read_only=True) as con:
        assert sorted(r for (r,) in con.execute("select run_id from runs").fetchall()) == sorted(runs)


def test_nothing_discoverable_fails_the_run_with_its_reason(h, server):
    server.routes["/e/list/index.html"] = lambda req, hit: req.send(200, b"<html><body><p>empty</p></body></html>")
    h.write_sources({"name": "e", "region": "县", "listing_urls": [server.url("/e/list/index.html")],
                     "allowed_hosts": ["127.0.0.1"], "rate_limit_per_second": 0})  # fmt: skip

    with pytest.raises(FailedRun, match="nothing could be discovered"):
        h.run()

    summary = h._summaries[-1]
    assert summary.status == "failed" and "yields no article link" in flows.runner.report_markdown(summary)
    assert h.query("select status from runs") == [("failed",)]


def random_report(n: int, size: int) -> bytes:
    """A report whose body is `size` characters of text that does not compress."""
    rng = random.Random(n)
    text = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(size))
    return report_html(index_no("/big", n), f"县民政局{2000 + n}年工作总结", ["一、主要工作", text])


DISK_FULL = """
set -u
mount -t tmpfs -o size={size} tmpfs {mount} || exit 97
"$@"
status=$?
cp -r {mount}/. {copy}/
exit $status
"""


@pytest.mark.timeout(180)
def test_a_full_disk_fails_the_run_with_that_reason_recorded(h, server, tmp_path):
    """A real ENOSPC: the warehouse lives on a tmpfs too small for the load, mounted in a
    user and mount namespace of the run's own (unshare -rm: no root needed where the kernel
    allows unprivileged user namespaces). The archive lives outside it."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("unshare -rm (a private mount namespace) is not available here")
    site = FakeSite(server, "/big")
    for n in range(1, 7):
        site.article(f"{n}.html", random_report(n, 150_000))
    h.write_sources(site.source("big"))
    empty = tmp_path / "empty.duckdb"
    connect(empty).close()  # how much a warehouse with nothing in it takes
    mount, copy = tmp_path / "small-disk", tmp_path / "after"
    mount.mkdir(), copy.mkdir()
    script = DISK_FULL.format(size=empty.stat().st_size + 1_200_000, mount=mount, copy=copy)

    done = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", sys.executable, "-m", "flows.nightly",
                           "--sources", str(h.sources_file), "--warehouse", str(mount / "warehouse.duckdb"),
                           "--archive", str(tmp_path / "archive")], cwd=PROJECT_ROOT, env=h.env(),
                          capture_output=True, text=True, timeout=150)  # fmt: skip

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("nightly run failed: disk full writing the warehouse") and "No space left" in last, last
    with duckdb.connect(str(copy / "warehouse.duckdb"), read_only=True) as con:
        ((status, message),) = con.execute("select status, message from runs").fetchall()
    assert status == "failed" and message.startswith("disk full writing the warehouse")  # not "killed or crashed"
    with sqlite3.connect(tmp_path / "archive" / "archive.sqlite") as con:
        assert con.execute("select count(*) from fetches where outcome = 'fetched'").fetchone()[0] == 6  # all kept


def test_a_configuration_error_in_a_deployment_run_fails_it_with_the_message_not_a_traceback(h, server):
    h.sources_file.write_text("sources:\n  - name: cixi\n    region: 慈溪市\n    listing_urls: [/relative/path]\n",
                              encoding="utf-8")  # fmt: skip
    with pytest.raises(FailedRun) as failed:
        h.run()
    assert str(failed.value) == (f"{h.sources_file} line 4, source 'cixi': listing URL '/relative/path' is not an "
                                 "absolute http(s) URL")  # fmt: skip
    assert h._summaries[-1].status == "failed" and not h.warehouse.exists()  # nothing started, nothing created
