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
import tasks.steps
from tasks.crawl.encoding import decode_html
from tasks.crawl.fetch import Fetcher
from tasks.settings import PROJECT_ROOT
from tasks.sources import load_sources
from tasks.summary import RunSummary, format_summary
from warehouse import connect
from warehouse.tables import data_tables
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

# A driver for subprocess runs: wraps warehouse.load._merge so that, on its Nth call
# (one call per load batch), after the batch's rows are written and BEFORE the
# transaction commits, it touches a marker file, then holds until a release file appears
# (or for a minute). Then runs the real CLI entry point.
#   python -c DRIVER MARKER RELEASE N -- <nightly arguments>
DRIVER = """
import os, sys, time
from pathlib import Path
import warehouse.load as load

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

    def __init__(self, tmp_path: Path, summaries: list[RunSummary]) -> None:
        self.tmp_path = tmp_path
        self.sources_file = tmp_path / "sources.yaml"
        self.warehouse = tmp_path / "data" / "warehouse.duckdb"
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

    def run(self, **parameters) -> RunSummary:
        """The nightly flow in this process (fast fetch limits); returns its RunSummary."""
        rows = flows.nightly.nightly(sources_file=str(self.sources_file), warehouse_path=str(self.warehouse),
                                     **parameters)  # fmt: skip
        summary = self._summaries[-1]
        assert rows == summary.rows() and summary.status == "completed", format_summary(summary)
        return summary

    def cli_args(self, *extra: str) -> list[str]:
        return ["--sources", str(self.sources_file), "--warehouse", str(self.warehouse), *extra]

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
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
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
def h(prefect_api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """In-process runs use fast fetch limits; every RunSummary the flow publishes is kept."""
    summaries: list[RunSummary] = []
    real_publish = flows.runner.publish

    def keep_summary(summary: RunSummary, started: float) -> None:
        summaries.append(summary)
        real_publish(summary, started)

    monkeypatch.setattr("flows.stages.Fetcher", partial(Fetcher, **FAST))
    monkeypatch.setattr("flows.runner.publish", keep_summary)
    harness = Harness(tmp_path, summaries)
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
def test_page_without_index_no_is_quarantined_once_across_runs(h, server):
    site = good_site(server, "/a", 2)
    nameless = site.article("nameless.html", report_page(None), validators=False)  # refetched in full each time
    h.write_sources(site.source("a"))

    first = h.run()
    second = h.run(revalidate_after_hours=0)

    assert (first.sources["a"].new, first.sources["a"].rejected) == (2, 1)
    assert [e for e in first.sources["a"].errors if "missing_index_no" in e and server.url(nameless) in e]
    assert server.hits(nameless) == 2 and second.sources["a"].fetched == 1  # the page really came again
    assert second.sources["a"].not_modified == 2 and second.sources["a"].new == 0
    rejects = h.query("select url, reason, detail, run_id from rejects")
    assert len(rejects) == 1, rejects
    assert rejects[0][:2] == (server.url(nameless), "missing_index_no") and "索引号" in rejects[0][2]
    assert rejects[0][3] == first.run_id
    assert h.scalar("select count(*) from report_urls where url = ?", [server.url(nameless)]) == 0
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

    summary = h.run()

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
    assert h.query("select status, failed, new from runs") == [("completed", 2, 3)]
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
    assert reasons == {site.url("garbage.html"): "missing_index_no", site.url("crashes.html"): "extract_error"}
    assert "RecursionError" in h.scalar("select detail from rejects where reason = 'extract_error'")
    assert h.query("select outcome from fetch_log where url = ?", [site.url("truncated.html")]) == [("network_error",)]
    assert h.scalar("select count(*) from sections where index_no = '001002/2023-00777'") > 0
    assert h.query("select status, rejected, failed from runs") == [("completed", 2, 1)]
    assert_whole(h, {index_no("/a", n): {site.url(f"{n:04d}.html")} for n in (1, 2, 3)}
                 | {"001002/2023-00777": {site.url("warns.html")}})


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
def test_kill_9_inside_a_load_leaves_whole_reports_and_the_next_run_finishes_from_the_archive(h, server):
    site = good_site(server, "/a", 6)
    h.write_sources(site.source("a"))
    expected = {index_no("/a", n): expected_children(report_page(index_no("/a", n)), site.url(f"{n:04d}.html"), h, "a")
                for n in range(1, 7)}  # fmt: skip

    proc, _, _ = h.spawn_held(2, "--batch-size", "2")  # batch 1 committed, batch 2 written, not committed
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
    assert h.query("select title, body_text from report_versions where index_no = ?",
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
