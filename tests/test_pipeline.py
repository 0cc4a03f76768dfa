"""End to end: the nightly flow over the sample site on loopback into a real DuckDB file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from evaluation.gold import gold_available, load_gold
from evaluation.score import norm
from flows.nightly import nightly
from sample_site import Resource
from sample_site.content import load_sample_sites
from sample_site.render import render_article
from warehouse.backend.connect import connect
from warehouse.backend.lake import current_snapshot, is_lake, tables_changed_since
from warehouse.schema.tables import data_tables
from tests.lakes import BACKENDS

pytestmark = pytest.mark.slow

GOLD_FIELDS = ("index_no", "title", "publisher", "publish_date", "written_date", "doc_number", "topic",
               "category", "disclosure_mode", "disclosure_scope", "summary_year", "plan_year", "region")  # fmt: skip


def _run(sources: Path, warehouse: str, **overrides) -> dict[str, dict]:
    archive = str(sources.parent / "archive")  # a lake is beside nothing: the archive is named
    rows = nightly(sources_file=str(sources), warehouse_path=warehouse, archive=archive, **overrides)
    return {row["source"]: row for row in rows}


def _checksums(warehouse: str) -> dict[str, tuple]:
    with connect(warehouse, read_only=True) as con:
        return {t: con.execute(f"select count(*), sum(hash(t)) from {t} as t").fetchone() for t in data_tables()}


@pytest.fixture(scope="module", params=BACKENDS)
def first_run(request, prefect_api, sample_site, tmp_path_factory):
    """One full run shared by the read-only assertions below, into a DuckDB file or a lake."""
    tmp = tmp_path_factory.mktemp("pipeline")
    sources = tmp / "sources.yaml"
    sources.write_text((Path(__file__).parents[1] / "sources.yaml").read_text(encoding="utf-8").replace(
        "${SAMPLE_SITE_URL:-http://127.0.0.1:8765}", sample_site.base_url.rstrip("/")), encoding="utf-8")
    warehouse = request.getfixturevalue("new_lake")() if request.param == "lake" else str(tmp / "warehouse.duckdb")
    return sources, warehouse, _run(sources, warehouse)


def _lake_snapshot(warehouse: str) -> int | None:
    if not is_lake(warehouse):
        return None
    with connect(warehouse, read_only=True) as con:
        return current_snapshot(con)


@pytest.mark.skipif(not gold_available(), reason="../shared/gold is not beside the repository")
def test_every_seed_report_lands_with_its_gold_metadata(first_run):
    _, warehouse, _ = first_run
    gold = load_gold()
    with connect(warehouse, read_only=True) as con:
        for doc, expected in gold.metadata.items():
            row = con.execute(f"select {', '.join(GOLD_FIELDS)}, body_text from reports where index_no = ?",
                              [expected["index_no"]]).fetchone()  # fmt: skip
            assert row is not None, f"{doc} missing from the warehouse"
            got = dict(zip(GOLD_FIELDS, row))
            for field in GOLD_FIELDS:
                assert norm(got[field]) == norm(expected[field]), (doc, field, got[field], expected[field])
            body = norm(row[-1])
            assert norm(expected["body_starts"]) in body[:200] and norm(expected["body_ends"]) in body[-200:]
            assert not [m for m in gold.chrome_markers if m in row[-1]]


def test_first_run_loads_every_listed_page_and_summarises_it(first_run):
    _, warehouse, summary = first_run
    listed = sum(len(site.articles) for site in load_sample_sites())
    assert summary["TOTAL"]["new"] == summary["TOTAL"]["fetched"] == listed
    assert summary["TOTAL"]["failed"] == summary["TOTAL"]["rejected"] == 0
    with connect(warehouse, read_only=True) as con:
        assert con.execute("select count(*), count(distinct index_no) from reports").fetchone() == (listed, listed)
        assert con.execute("select count(*) from reports r where not exists "
                           "(select 1 from sections s where s.index_no = r.index_no)").fetchone()[0] == 0
        assert con.execute("select count(*) from metrics where indicator = 'dibao_standard'").fetchone()[0] >= 5
        assert con.execute("select status from runs order by started_at").fetchall()[-1] == ("completed",)


def test_second_run_writes_nothing(first_run):
    sources, warehouse, _ = first_run
    before = _checksums(warehouse)
    snapshot = _lake_snapshot(warehouse)
    summary = _run(sources, warehouse, revalidate_after_hours=0)  # even re-checking every page
    assert summary["TOTAL"]["new"] == summary["TOTAL"]["changed"] == 0
    listed = sum(len(site.articles) for site in load_sample_sites())
    assert summary["TOTAL"]["not_modified"] == listed  # every known page re-checked: a 304 each
    assert _checksums(warehouse) == before
    if snapshot is not None:  # a lake: the rerun's snapshots hold the run ledger and nothing else
        with connect(warehouse, read_only=True) as con:
            assert set(tables_changed_since(con, snapshot)) <= {"runs", "run_sources", "loads", "fetch_log"}


def test_changed_page_is_a_new_version_not_a_duplicate(first_run, sample_site):
    sources, warehouse, _ = first_run
    site = next(s for s in load_sample_sites() if s.key == "cixi")
    article = next(a for a in site.articles if a.seed)
    edited = article.__class__(**{**article.__dict__, "paragraphs": article.paragraphs + ("补充说明：全年新增床位100张。",)})
    original = sample_site.corpus[article.path]
    sample_site.corpus[article.path] = Resource(render_article(site, edited), original.content_type, datetime.now(UTC))
    try:
        summary = _run(sources, warehouse, revalidate_after_hours=0)
    finally:
        sample_site.corpus[article.path] = original
    assert summary["cixi"]["changed"] == 1 and summary["TOTAL"]["new"] == 0
    with connect(warehouse, read_only=True) as con:
        assert con.execute("select count(*) from reports where index_no = ?", [article.index_no]).fetchone()[0] == 1
        versions = con.execute("select version, change_kind from report_versions where index_no = ? order by version",
                               [article.index_no]).fetchall()  # fmt: skip
        assert versions == [(1, "new"), (2, "content_changed")]
        body = con.execute("select body_text from reports where index_no = ?", [article.index_no]).fetchone()[0]
        assert "补充说明" in body
        assert con.execute("select count(*) from metrics where index_no = ? and value_norm = 100 and unit_norm = 'bed'",
                           [article.index_no]).fetchone()[0] == 1  # fmt: skip


def test_command_line_runs_skip_flow_heartbeats_unless_the_operator_sets_them(prefect_api):
    """The heartbeat thread wakes once a second and the engine joins it at the end of every
    run: a command-line run has no use for it unless the operator configured a frequency
    (PREFECT_FLOWS_HEARTBEAT_FREQUENCY, in the environment or the Prefect profile)."""
    from prefect import flow
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

    from flows.runner import run_from_cli

    seen: list[int | None] = []

    @flow
    def probe() -> None:
        seen.append(get_current_settings().flows.heartbeat_frequency)

    assert run_from_cli(probe, "probe") == 0
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 60}):  # as a profile or env would
        assert run_from_cli(probe, "probe") == 0
    assert seen == [None, 60]
