"""Run states that tell the truth (issue 17.5, 17.6): the verdict on a crawl, the Prefect state
and exit status of each outcome, and what `python -m flows.nightly` prints for the failures
an operator meets before a run starts (configuration, a damaged archive).

The outcomes of whole runs in the warehouse (runs, run_sources, the summary) are tested end
to end in test_faults_flow.py; here, the verdict itself and the command line's end.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from flows.runner import Verdict, crawl_verdict, disk_full_reason, final_state, report_markdown
from tasks.settings import PROJECT_ROOT
from tasks.summary import RunSummary
from tests.faultserver import FakeSite, FaultServer, refused_url, report_page
from tests.test_frontier import result as fetched

pytestmark = pytest.mark.timeout(120)


def summary_of(**sources: dict) -> RunSummary:
    summary = RunSummary("run-1", datetime(2024, 5, 1, tzinfo=UTC))
    for name, counts in sources.items():
        target = summary.counts(name)
        for key, value in counts.items():
            setattr(target, key, value)
    return summary


DEAD = {"failed": 1, "errors": ["listing page http://a/: could not connect"]}
READ = {"discovered": 9, "fetched": 9}


# --- the verdict on a crawl ---------------------------------------------------------------
def test_every_source_read_is_completed_even_with_failed_pages():
    summary = summary_of(a=READ, b={"discovered": 4, "fetched": 3, "failed": 1, "errors": ["http://b/1: 503"]})
    assert crawl_verdict(summary, ["a", "b"]) == Verdict("completed")


def test_a_known_column_with_nothing_new_is_completed():
    assert crawl_verdict(summary_of(a={"discovered": 9}), ["a"]) == Verdict("completed")


def test_some_sources_failed_is_partial_and_names_them_with_their_reason():
    verdict = crawl_verdict(summary_of(a=READ, b=DEAD, c=READ), ["a", "b", "c"])
    assert verdict == Verdict("partial", "1 of 3 sources failed: b (listing page http://a/: could not connect)")


def test_a_dead_listing_whose_pending_links_still_came_is_not_a_failed_source():
    verdict = crawl_verdict(summary_of(a=READ, b=DEAD | {"fetched": 2}), ["a", "b"])
    assert verdict.status == "completed"


def test_every_source_failed_is_failed():
    verdict = crawl_verdict(summary_of(a=DEAD, b=DEAD), ["a", "b"])
    assert verdict.status == "failed" and verdict.message.startswith("every source failed: a (listing page")


def test_no_article_link_anywhere_is_failed():
    verdict = crawl_verdict(summary_of(a={"discovered": 0}, b={"discovered": 0}), ["a", "b"])
    assert verdict.status == "failed" and verdict.message.startswith("nothing could be discovered")


def test_no_source_to_crawl_is_completed():
    assert crawl_verdict(summary_of(), []) == Verdict("completed")


# --- states, disk full, the report ---------------------------------------------------------
@pytest.mark.parametrize("status, prefect, message", [
    ("completed", "COMPLETED", None),
    ("partial", "COMPLETED", "partial: 1 of 2 sources failed: b (x)"),
    ("failed", "FAILED", "1 of 2 sources failed: b (x)"),
    ("interrupted", "CANCELLED", "1 of 2 sources failed: b (x)"),
])  # fmt: skip
def test_each_run_status_ends_in_its_prefect_state_with_the_message(status, prefect, message):
    summary = summary_of(a=READ)
    summary.status, summary.message = status, None if status == "completed" else "1 of 2 sources failed: b (x)"
    state = final_state(summary)
    assert state.type.value == prefect and state.message == message


def test_disk_full_errors_are_told_from_others_wherever_they_come_from():
    full = OSError(errno.ENOSPC, "No space left on device", "/data/.warehouse.snapshot.duckdb.tmp")
    assert disk_full_reason(full).startswith("disk full writing /data/.warehouse.snapshot.duckdb.tmp")
    sqlite_full = sqlite3.connect(":memory:")
    sqlite_full.execute("pragma max_page_count = 2")
    with pytest.raises(sqlite3.OperationalError) as caught:
        sqlite_full.execute("create table t (x)").execute("insert into t select randomblob(9000)")
    assert disk_full_reason(caught.value).startswith("disk full writing the raw archive")
    duck = duckdb.IOException('Could not write file "/data/warehouse.duckdb.wal": No space left on device')
    assert disk_full_reason(duck).startswith("disk full writing the warehouse")
    assert "free some space and run again" in disk_full_reason(duck)
    assert disk_full_reason(OSError(errno.EACCES, "Permission denied")) is None
    assert disk_full_reason(duckdb.IOException("Could not set lock on file")) is None


def test_the_run_report_holds_every_failure_and_failing_check():
    summary = summary_of(a=READ, b=DEAD)
    summary.status, summary.message = "partial", "1 of 2 sources failed: b (…)"
    summary.checks = [{"check_name": "units_known", "status": "fail", "detail": "3 unknown units"},
                      {"check_name": "unique_keys", "status": "pass", "detail": None}]  # fmt: skip
    report = report_markdown(summary)
    assert "partial" in report and "1 of 2 sources failed" in report
    assert "b: listing page http://a/: could not connect" in report
    assert "fail: units_known: 3 unknown units" in report and "unique_keys" not in report


# --- the command line, before a run starts --------------------------------------------------
def nightly_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.nightly", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=90, env=env)  # fmt: skip


def test_a_configuration_error_names_file_line_and_source_in_one_line_and_exits_2(tmp_path):
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": [
        {"name": "tiantai", "region": "天台县", "listing_urls": ["http://a.gov.cn/col/"]},
        {"name": "cixi", "region": "慈溪市", "listing_urls": ["http://b.gov.cn/col/"], "rate_limit_per_second": "fast"},
    ]}, allow_unicode=True, sort_keys=False), encoding="utf-8")  # fmt: skip
    line = next(n for n, row in enumerate(sources.read_text(encoding="utf-8").splitlines(), 1) if "fast" in row)

    done = nightly_cli("--sources", str(sources), "--warehouse", str(tmp_path / "w.duckdb"))

    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [f"nightly run not started: {sources} line {line}, source 'cixi': "
                                        "rate_limit_per_second: expected a number >= 0"]  # fmt: skip
    assert not (tmp_path / "w.duckdb").exists()


def test_an_unknown_only_name_is_a_configuration_error(tmp_path):
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": [{"name": "a", "region": "县", "listing_urls": ["http://a/"]}]}))
    done = nightly_cli("--sources", str(sources), "--only", "b", "--warehouse", str(tmp_path / "w.duckdb"))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "no source named ['b']" in done.stderr


def test_a_damaged_archive_is_named_with_the_command_that_sets_it_aside(tmp_path):
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": [{"name": "a", "region": "县", "listing_urls": [refused_url()]}]}))
    archive = tmp_path / "archive" / "archive.sqlite"
    archive.parent.mkdir()
    archive.write_bytes(b"SQLite format 3\0" + b"\x13" * 8000)  # a header, then garbage

    done = nightly_cli("--sources", str(sources), "--warehouse", str(tmp_path / "w.duckdb"))

    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"nightly run failed: the raw archive {archive} is damaged")
    assert f"`python -m tasks.crawl.archive set-aside {archive}`" in line
    aside = subprocess.run([sys.executable, "-m", "tasks.crawl.archive", "set-aside", str(archive)],
                           cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert aside.returncode == 0 and not archive.exists() and "damaged-" in aside.stdout
    assert [p.name.split(".damaged-")[0] for p in archive.parent.iterdir()] == ["archive.sqlite"]


def test_every_source_failed_exits_1_and_is_failed_in_runs(prefect_api, tmp_path):
    """The README's scheduling steps followed without serving the sample site: every listing
    refuses the connection. The run is no green Completed."""
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": [
        {"name": name, "region": "县", "listing_urls": [refused_url()], "rate_limit_per_second": 0}
        for name in ("a", "b")]}))  # fmt: skip
    warehouse = tmp_path / "w.duckdb"

    done = nightly_cli("--sources", str(sources), "--warehouse", str(warehouse),
                       env=os.environ | {"GOVETL_RETRY_TIMES": "0"})  # fmt: skip

    assert done.returncode == 1 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("nightly run failed: every source failed: a (listing page http://127.0.0.1:"), last
    assert "could not connect" in last
    with duckdb.connect(str(warehouse), read_only=True) as con:
        ((status, message),) = con.execute("select status, message from runs").fetchall()
        errors = con.execute("select source, error from run_sources order by source").fetchall()
    assert status == "failed" and message.startswith("every source failed")
    assert [source for source, error in errors if "could not connect" in error] == ["a", "b"]


def test_a_partial_run_exits_0_and_says_partial_on_stderr(prefect_api, tmp_path):
    with FaultServer(routes={}) as server:
        site = FakeSite(server, "/a")
        site.article("1.html", report_page("001/2024-00001"))
        sources = tmp_path / "sources.yaml"
        sources.write_text(yaml.safe_dump({"sources": [
            site.source("a"), {"name": "b", "region": "县", "listing_urls": [refused_url()], "rate_limit_per_second": 0},
        ]}))  # fmt: skip
        done = nightly_cli("--sources", str(sources), "--warehouse", str(tmp_path / "w.duckdb"),
                           env=os.environ | {"GOVETL_RETRY_TIMES": "0"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("nightly run partial: 1 of 2 sources failed: b (listing page")
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("select status, new, failed from runs").fetchall() == [("partial", 1, 1)]


def test_the_archive_command_checks_an_archive(tmp_path):
    from tasks.crawl.archive import RawArchive

    RawArchive(tmp_path / "archive.sqlite").close()
    done = subprocess.run([sys.executable, "-m", "tasks.crawl.archive", "check", str(tmp_path / "archive.sqlite")],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip().endswith(": ok")
    missing = subprocess.run([sys.executable, "-m", "tasks.crawl.archive", "check", str(tmp_path / "none.sqlite")],
                             cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert missing.returncode == 1 and "no archive at" in missing.stderr


def test_a_damaged_page_inside_a_sound_header_is_found_by_quick_check(tmp_path):
    from tasks.crawl.archive import ArchiveDamagedError, RawArchive, check

    path = tmp_path / "archive.sqlite"
    with RawArchive(path) as archive:
        archive.record("run-1", "s", fetched("http://a/1"))
    with sqlite3.connect(path) as con:
        con.execute("pragma wal_checkpoint(truncate)")
        page_size = con.execute("pragma page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    data[page_size * 2 + 8:page_size * 2 + 64] = b"\xff" * 56  # scribble over a b-tree page's cells
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveDamagedError) as caught:
        check(path)
    assert str(path) in str(caught.value) and "set-aside" in str(caught.value)
    assert Path(path).exists()  # checking never moves or creates anything
