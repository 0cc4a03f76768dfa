"""The warehouse on real DuckDB files: schema, merge, rejects, rollback, views, checks,
search and export. Locking across processes is in test_warehouse_locking.py."""

from __future__ import annotations

import dataclasses
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tasks.records import Metric, Section
from tasks import settings
from warehouse.backend.connect import connect, memory_limit
from warehouse.backend.errors import MigrationError, WarehouseKeyError
from warehouse.quality.checks import run_checks
from warehouse.schema.migrate import VIEWS_DIR, list_migrations, migrate
from warehouse.schema.tables import TABLES, data_tables
from warehouse.writer.history import history_notes
from warehouse.writer.load import StagedPages, count_outcomes, load_pages, record_fetch_log
from warehouse.writer.runs import finish_run, start_run
from tests.lakes import both_backends
from tests.reports import T0, later, make_page, metrics_for, sections_for, table_checksums
from warehouse.backend.tx import transaction

DATA_TABLES = data_tables()


@pytest.fixture
def con(migrated_target: str | Path):
    """A migrated warehouse: a copy of migrated_file, or a new lake under @both_backends."""
    connection = connect(migrated_target)
    yield connection
    connection.close()


def one(con: duckdb.DuckDBPyConnection, sql: str, *params):
    return con.execute(sql, list(params)).fetchone()


# --- schema ------------------------------------------------------------------------------
def test_migrations_apply_once_and_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "w.duckdb"
    con = connect(path)  # creates the parent directories and migrates
    applied = [n for (n,) in con.execute("select name from schema_migrations order by version").fetchall()]
    on_disk = [m.name for m in list_migrations()]
    assert applied == on_disk and on_disk[:4] == ["0001_reports.sql", "0002_operations.sql",
                                                  "0003_search.sql", "0004_comments.sql"]
    assert migrate(con) == []
    con.close()
    con = connect(path)
    assert migrate(con) == []
    assert one(con, "select count(*) from schema_migrations") == (len(on_disk),)
    assert one(con, "select count(*) from indicators where code = 'dibao_standard'") == (1,)
    assert one(con, "select count(*) from unit_vocabulary")[0] >= 22


def test_unit_vocabulary_covers_the_extractors_units(con) -> None:
    units = Path(__file__).resolve().parents[1] / "config" / "units.csv"
    if not units.exists():
        pytest.skip("config/units.csv not present")
    unknown = con.execute("""
        select distinct u.unit_norm from read_csv(?, header = true, all_varchar = true) as u
        anti join unit_vocabulary as v using (unit_norm)
        where u.unit_norm is not null""", [str(units)]).fetchall()
    assert unknown == [], "extend warehouse/schema/seeds/unit_vocabulary.csv"


def test_migrate_refuses_an_edited_or_missing_migration(con) -> None:
    # as if 0002 had been edited after it was applied
    con.execute("update schema_migrations set sha256 = 'edited' where version = 2")
    with pytest.raises(MigrationError, match="0002_operations.sql changed after it was applied"):
        migrate(con)
    [applied] = [m for m in list_migrations() if m.version == 2]
    con.execute("update schema_migrations set sha256 = ? where version = 2", [applied.sha256])
    # as if the warehouse had been migrated by newer code
    con.execute("insert into schema_migrations values (99, '0099_future.sql', now(), 'x')")
    with pytest.raises(MigrationError, match="0099_future.sql is applied .* but missing"):
        migrate(con)


def test_changed_views_are_reapplied(con, tmp_path, monkeypatch) -> None:
    views = tmp_path / "views"
    shutil.copytree(VIEWS_DIR, views)
    outline = views / "20_report_outline.sql"
    outline.write_text(outline.read_text(encoding="utf-8").replace(
        "comment on view report_outline is '", "comment on view report_outline is 'EDITED "),
        encoding="utf-8")
    monkeypatch.setattr(importlib.import_module("warehouse.schema.migrate"), "VIEWS_DIR", views)
    assert migrate(con) == ["views/20_report_outline.sql"]
    assert one(con, "select comment from duckdb_views() where view_name = 'report_outline'"
               )[0].startswith("EDITED ")
    assert migrate(con) == []


def test_every_table_view_and_column_has_a_comment(con) -> None:
    undocumented = con.execute("""
        select table_name from duckdb_tables() where schema_name = 'main' and comment is null
        union all
        select view_name from duckdb_views() where schema_name = 'main' and not internal
          and comment is null
        union all
        select c.table_name || '.' || c.column_name from duckdb_columns() as c
        join duckdb_tables() as t using (schema_name, table_name)
        where c.schema_name = 'main' and c.comment is null""").fetchall()
    assert undocumented == []


def test_declared_keys_are_the_primary_keys(con) -> None:
    primary = dict(con.execute("""
        select table_name, constraint_column_names from duckdb_constraints()
        where constraint_type = 'PRIMARY KEY'""").fetchall())
    tables = {t for (t,) in con.execute(
        "select table_name from duckdb_tables() where schema_name = 'main'").fetchall()}
    assert tables == set(TABLES)
    for spec in TABLES.values():
        assert primary.get(spec.name) == (list(spec.key) if spec.enforced else None), spec.name


# --- merge -------------------------------------------------------------------------------
@both_backends
def test_new_then_unchanged_then_changed(con) -> None:
    page = make_page()
    [outcome] = load_pages(con, "run-1", [page], T0)
    assert (outcome.status, outcome.reason, outcome.index_no) == ("new", None, "331023-01/2023-0001")
    assert one(con, "select version, first_seen_at, updated_at from reports") == (1, T0, T0)

    [outcome] = load_pages(con, "run-2", [make_page()], later(60))
    assert (outcome.status, outcome.reason) == ("unchanged", None)
    assert one(con, "select version, updated_at, run_id from reports") == (1, T0, "run-1")

    changed = make_page(body="修订后的正文", sections=sections_for("331023-01/2023-0001")[:3],
                        metrics=metrics_for("331023-01/2023-0001", beds=150)[:1])
    [outcome] = load_pages(con, "run-3", [changed], later(120))
    assert outcome.status == "changed"
    assert one(con, "select version, body_text, first_seen_at, updated_at, run_id from reports") == (
        2, "修订后的正文", T0, later(120), "run-3")
    # the replaced body moved to its version; the current one is stored once, in reports
    assert con.execute("select version, change_kind, observed_at, body_text from report_versions "
                       "order by version").fetchall() == [
        (1, "new", T0, page.extraction.report.body_text),
        (2, "content_changed", later(120), None)]
    assert con.execute("select version, is_current, body_text from report_version_texts order by version"
                       ).fetchall() == [(1, False, page.extraction.report.body_text), (2, True, "修订后的正文")]  # fmt: skip
    # children replaced whole: the dropped sections and metrics are gone
    assert one(con, "select count(*) from sections") == (3,)
    assert con.execute("select ordinal, value from metrics").fetchall() == [(0, 150.0)]
    assert one(con, "select count(*) from search_sections") == (3,)
    assert one(con, "select count(*) from loads") == (3,)


def test_a_warehouse_holding_current_bodies_twice_keeps_each_once_after_migration_0014(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    con = connect(path)
    load_pages(con, "run-1", [make_page(body="第一版正文")], T0)
    load_pages(con, "run-2", [make_page(body="第二版正文")], later(60))
    # as a warehouse loaded before 0014 holds it: every version's body in report_versions
    con.execute("""update report_versions as v set body_text = r.body_text from reports as r
                   where r.index_no = v.index_no and r.version = v.version""")
    con.execute("delete from schema_migrations where version = 14")
    failed = {r.check_name: r.detail for r in run_checks(con, "run-2") if r.status != "pass"}
    assert list(failed) == ["current_body_stored_once"] and "331023-01/2023-0001" in failed["current_body_stored_once"]
    con.close()

    con = connect(path)  # applies 0014 again
    try:
        assert con.execute("select version, body_text from report_versions order by version").fetchall() == [
            (1, "第一版正文"), (2, None)]
        assert con.execute("select version, body_text from report_version_texts order by version").fetchall() == [
            (1, "第一版正文"), (2, "第二版正文")]
        assert one(con, "select body_text from reports") == ("第二版正文",)
        assert {r.status for r in run_checks(con, "run-3")} == {"pass"}
    finally:
        con.close()


@both_backends
def test_second_identical_load_writes_nothing(con) -> None:
    pages = [make_page(f"IDX-{i}") for i in range(3)] + [make_page(None, url="http://x/no-key")]
    load_pages(con, "run-1", pages, T0)
    before = table_checksums(con, DATA_TABLES)
    again = [make_page(f"IDX-{i}") for i in range(3)] + [make_page(None, url="http://x/no-key")]
    outcomes = load_pages(con, "run-2", again, later(60))
    assert [o.status for o in outcomes] == ["unchanged"] * 3 + ["rejected"]
    assert table_checksums(con, DATA_TABLES) == before
    assert count_outcomes(outcomes) == {"tiantai": {"unchanged": 3, "rejected": 1}}


@both_backends
def test_two_urls_with_one_index_no_are_one_report(con) -> None:
    first = make_page("IDX-A", url="http://a/1.html", fetched_at=later(1))
    second = make_page("IDX-A", url="http://a/2.html", fetched_at=later(2))  # the same page, another column
    outcomes = load_pages(con, "run-1", [second, first], T0)  # order in the batch is irrelevant
    assert [(o.url, o.status, o.reason) for o in outcomes] == [
        ("http://a/2.html", "unchanged", "duplicate_in_batch"), ("http://a/1.html", "new", None)]
    assert one(con, "select count(*), any_value(url) from reports") == (1, "http://a/1.html")  # the first fetch
    assert one(con, "select count(*) from report_versions") == (1,)

    third = make_page("IDX-A", url="http://a/3.html")  # same content
    [outcome] = load_pages(con, "run-2", [third], later(60))
    assert (outcome.status, outcome.reason) == ("unchanged", None)
    assert con.execute("select url, first_seen_at from report_urls order by url").fetchall() == [
        ("http://a/1.html", T0), ("http://a/2.html", T0), ("http://a/3.html", later(60))]
    assert one(con, "select n_urls, version from latest_reports") == (3, 1)


@both_backends
def test_pages_without_index_no_are_quarantined_once(con) -> None:
    pages = [make_page(None, url="http://x/a"), make_page("", url="http://x/b"),
             make_page("   ", url="http://x/c"),
             make_page("IDX-1", url="http://x/d", reject_reason="not_html"),
             make_page("IDX-2", url="http://x/e", reject_reason="extract_error: table parse failed")]
    outcomes = load_pages(con, "run-1", pages, T0)
    assert [(o.status, o.reason) for o in outcomes] == [
        ("rejected", "missing_index_no")] * 3 + [("rejected", "not_html"), ("rejected", "extract_error")]
    assert one(con, "select count(*) from reports") == (0,)
    assert one(con, "select count(*) from sections") == (0,)
    rows = dict(con.execute("select url, detail from rejects").fetchall())
    assert "索引号" in rows["http://x/a"] and rows["http://x/e"] == "table parse failed"

    load_pages(con, "run-2", pages, later(60))  # same bytes again: nothing added
    assert one(con, "select count(*), max(run_id) from rejects") == (5, "run-1")
    load_pages(con, "run-3", [make_page(None, url="http://x/a", raw=b"other bytes")], later(90))
    assert one(con, "select count(*) from rejects where url = 'http://x/a'") == (2,)


def test_unkeyable_children_reject_only_their_page(con) -> None:
    duplicated = sections_for("IDX-1")
    duplicated[2] = dataclasses.replace(duplicated[2], section_id="1")
    outcomes = load_pages(con, "run-1", [make_page("IDX-1", sections=duplicated),
                                         make_page("IDX-2")], T0)
    assert [(o.status, o.reason) for o in outcomes] == [
        ("rejected", "invalid_extraction"), ("new", None)]
    assert "section_id" in one(con, "select detail from rejects")[0]


@both_backends
def test_reextraction_replaces_children_without_a_new_version(con) -> None:
    load_pages(con, "run-1", [make_page()], T0)
    reextracted = make_page(extractor_version="2.0", metrics=metrics_for("331023-01/2023-0001")[:2])
    [outcome] = load_pages(con, "run-2", [reextracted], later(60))
    assert (outcome.status, outcome.reason) == ("unchanged", "reextracted")
    assert one(con, "select version, extractor_version, updated_at, first_seen_at from reports") == (
        1, "2.0", later(60), T0)
    assert one(con, "select count(*) from report_versions") == (1,)
    assert one(con, "select count(*) from metrics") == (2,)
    assert one(con, "select reextracted, unchanged from loads order by load_id desc limit 1") == (1, 1)


def _stored(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """What the data tables hold, without the columns that name the load transaction."""
    return {"reports": con.execute("select index_no, version, content_sha256 from reports order by all").fetchall(),
            "search": con.execute("select index_no, section_id, n_terms, words from search_sections order by all")
            .fetchall(),
            **{table: con.execute(f"select * exclude (load_id) from {table} order by all").fetchall()
               for table in ("sections", "metrics", "ranks")}}  # fmt: skip


@both_backends
def test_a_transaction_of_many_batches_stores_what_one_batch_would(con, tmp_path, monkeypatch) -> None:
    # Each batch copied into the staged tables on its own (create, then appends), as a
    # nightly run's transaction of thousands of pages is; a changed report's rows replaced.
    monkeypatch.setattr("warehouse.writer.load.HOLD_ROWS", 1)
    first = [make_page("IDX-1"), make_page("IDX-2"), make_page("IDX-3")]
    batches = [[make_page("IDX-1", body="changed", fetched_at=later(60)), make_page("IDX-4")],
               [make_page("IDX-5"), make_page("IDX-2", fetched_at=later(60))],
               [make_page("IDX-6")]]
    load_pages(con, "run-1", first, T0)
    with StagedPages(con, "run-2", later(60)) as load:
        for batch in batches:
            load.add(batch)
        outcomes = load.commit()
    assert [(o.index_no, o.status) for o in outcomes] == [
        ("IDX-1", "changed"), ("IDX-4", "new"), ("IDX-5", "new"), ("IDX-2", "unchanged"), ("IDX-6", "new")]

    one_batch = connect(tmp_path / "one-batch.duckdb")
    try:
        load_pages(one_batch, "run-1", first, T0)
        load_pages(one_batch, "run-2", [page for batch in batches for page in batch], later(60))
        assert _stored(con) == _stored(one_batch)
    finally:
        one_batch.close()
    per_report = one(con, "select count(distinct index_no), max(n), min(n) from "
                          "(select index_no, count(*) as n from sections group by index_no)")
    assert per_report == (6, len(sections_for("IDX-1")), len(sections_for("IDX-1")))  # replaced, not added to
    assert not [r for r in run_checks(con, "run-2") if r.status == "fail"]
    assert not con.execute("select table_name from duckdb_tables() where temporary").fetchall()  # nothing left staged


@both_backends
def test_failure_mid_load_rolls_back_the_whole_batch(con, monkeypatch) -> None:
    load_pages(con, "run-1", [make_page("IDX-1")], T0)
    before = table_checksums(con, DATA_TABLES + ["loads", "fetch_log"])
    batch = [make_page("IDX-1", body="changed"), make_page("IDX-2")]

    def fail(*_args):
        raise RuntimeError("injected after reports, versions and children were written")

    monkeypatch.setattr("warehouse.writer.load._index_sections", fail)
    with pytest.raises(RuntimeError, match="injected"):
        load_pages(con, "run-2", batch, later(60), fetch_log_rows=[{"fetch_id": 1, "url": "u",
                                                                     "outcome": "fetched"}])
    assert table_checksums(con, DATA_TABLES + ["loads", "fetch_log"]) == before
    monkeypatch.undo()

    # A failure DuckDB raises itself, after the reports were written: level overflows INTEGER.
    bad = sections_for("IDX-3")
    bad[4] = dataclasses.replace(bad[4], level=2**40)
    with pytest.raises(duckdb.Error):
        load_pages(con, "run-3", batch + [make_page("IDX-3", sections=bad)], later(90))
    assert table_checksums(con, DATA_TABLES + ["loads", "fetch_log"]) == before

    # the connection is clean afterwards: no leftover staging or temp tables
    assert [o.status for o in load_pages(con, "run-4", batch, later(120))] == ["changed", "new"]


def test_hostile_content_is_stored_verbatim(con) -> None:
    title = "O'Brien \"quoted\" '); drop table reports; -- <script>alert('x')</script> \\ ${x} %s ?"
    controls = "".join(chr(c) for c in range(0, 32)) + "\x7f\u2028\u2029\ufeff\ud7ff😀"
    huge = ("养老床位" * 25 + "<b>&amp;</b>'\"; ") * 90_000  # one ~10 MB paragraph
    assert len(huge.encode()) > 10_000_000
    sections = [Section("IDX-H", "0", None, 0, None, title, controls + huge, 0)]
    metrics = [Metric("IDX-H", "0", 0, 1.0, "个'", 1.0, "item", subject=title, sentence=controls)]
    page = make_page("IDX-H", title=title, body=huge + controls, sections=sections, metrics=metrics)
    with memory_limit(con, settings.WAREHOUSE_MEMORY_LIMIT_LARGE):  # as the pipeline loads such a page
        load_pages(con, "run-1", [page], T0)
    assert one(con, "select title, body_text from reports") == (title, huge + controls)
    assert one(con, "select heading, text from sections") == (title, controls + huge)
    assert one(con, "select subject, sentence, unit from metrics") == (title, controls, "个'")
    assert one(con, "select count(*) from reports") == (1,)
    with memory_limit(con, settings.WAREHOUSE_MEMORY_LIMIT_LARGE):  # a reader's budget, not the writer's
        [hit] = con.execute("select section_id from search('养老床位')").fetchall()
    assert hit == ("0",)


def test_the_writer_imports_neither_pandas_nor_pyarrow(tmp_path) -> None:
    """Every write of a run, in a process of its own: staging goes through nanoarrow, since
    pyarrow and the pandas its first array imports would hold ~80 MB of each run's peak."""
    script = f"""
import sys
import flows.nightly, flows.reprocess
from warehouse import connect, finish_run, record_fetch_log, run_checks, snapshot, start_run
from warehouse.writer.load import load_pages
from tests.reports import T0, make_page
con = connect({str(tmp_path / "w.duckdb")!r})
start_run(con, "run-1", parameters={{"sources": ["tiantai"]}}, started_at=T0)
load_pages(con, "run-1", [make_page("IDX-1"), make_page(None)], T0)
record_fetch_log(con, [{{"fetch_id": 1, "source": "tiantai", "url": "http://x/1", "outcome": "fetched", "fetched_at": T0}}],
                 run_id="run-1")
run_checks(con, "run-1")
finish_run(con, "run-1", status="completed", counts={{"new": 1}}, sources={{"tiantai": {{"new": 1}}}})
con.close()
snapshot({str(tmp_path / "w.duckdb")!r})
print(sorted(name for name in ("pandas", "pyarrow") if name in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


# --- views, search, checks ---------------------------------------------------------------
@pytest.fixture
def three_regions(con):
    load_pages(con, "run-1", _three_region_pages(), T0)
    return con


def _three_region_pages() -> list:
    return [
        make_page("TT-1", source="tiantai", region="天台县"),
        make_page("XJ-1", source="xianju", region="仙居县",
                  metrics=metrics_for("XJ-1", beds=80),
                  sections=sections_for("XJ-1", plan_text="2023年新建养老床位200张,床位总数再增加。")),
        make_page("CX-1", source="cixi", region="慈溪市", metrics=[],
                  sections=sections_for("CX-1")[:2]),
    ]


@both_backends
def test_views_return_expected_rows(three_regions) -> None:
    con = three_regions
    outline = [r for (r,) in con.execute(
        "select outline from report_outline where index_no = 'TT-1' order by ordinal").fetchall()]
    assert outline == ["", "  一 2022年工作总结", "    一 养老服务", "    二 社会救助", "  二 2023年工作计划"]
    series = con.execute("select region, indicator, year, value_norm, role from indicator_series "
                         "where index_no = 'TT-1' order by ordinal").fetchall()
    assert series == [("天台县", "eldercare_beds_new", 2022, 120.0, None),
                      ("天台县", "dibao_standard", 2022, 900.0, "previous"),
                      ("天台县", "dibao_standard", 2022, 950.0, "current")]
    compare = con.execute("select region, value_norm, unit_norm, index_no "
                          "from indicator_compare('dibao_standard', 2022)").fetchall()
    assert compare == [("仙居县", 950.0, "yuan/person/month", "XJ-1"),
                       ("天台县", 950.0, "yuan/person/month", "TT-1")]
    beds = con.execute("select region, value_norm from indicator_compare('eldercare_beds_new', 2022)"
                       ).fetchall()
    assert beds == [("天台县", 120.0), ("仙居县", 80.0)]
    # 900→950: the old side of the pair is no candidate; the cell holds 950 alone, no disagreement
    assert one(con, "select value_norm, n_values, disagree from indicator_by_region_year where region = '天台县' "
                    "and indicator = 'dibao_standard'") == (950.0, 1, False)
    latest = con.execute("select index_no, version, n_urls, n_sections, n_metrics, first_seen_at "
                         "from latest_reports order by index_no").fetchall()
    assert latest == [("CX-1", 1, 1, 2, 0, T0), ("TT-1", 1, 1, 5, 5, T0), ("XJ-1", 1, 1, 5, 5, T0)]


def test_checks_pass_on_good_data_and_flag_bad_units_and_counts(three_regions) -> None:
    con = three_regions
    results = {r.check_name: r for r in run_checks(con, "run-1")}
    failing = {name: r.detail for name, r in results.items() if r.status == "fail"}
    assert failing == {}
    assert results["unique_key:metrics"].status == "pass"

    bad = [Metric("BAD-1", "1.1", 0, -5, "人", -5, "person", text="-5人"),
           Metric("BAD-1", "1.1", 1, 3, "斤", 1.5, "kilogram", text="3斤"),
           Metric("BAD-1", "1.1", 2, 1200, "%", 1200, "percent", text="1200%")]
    load_pages(con, "run-2", [make_page("BAD-1", metrics=bad)], later(60))
    results = {r.check_name: r for r in run_checks(con, "run-2")}
    assert results["metrics_no_negative_counts"].status == "fail"
    assert "BAD-1#0" in results["metrics_no_negative_counts"].detail
    assert (results["metrics_unit_norm_known"].status, results["metrics_unit_norm_known"].observed) == (
        "fail", 1.0)
    assert "kilogram" in results["metrics_unit_norm_known"].detail
    assert results["metrics_percent_in_bounds"].status == "warn"
    run_checks(con, "run-2")  # re-running replaces the run's rows
    assert one(con, "select count(*), count(distinct check_name) from dq_results where run_id = 'run-2'"
               ) == (len(results), len(results))


def test_checks_flag_reports_without_sections(con) -> None:
    load_pages(con, "run-1", [make_page("EMPTY-1", sections=[], metrics=[], ranks=[])], T0)
    results = {r.check_name: r for r in run_checks(con, "run-1")}
    assert results["reports_have_sections"].status == "fail"
    assert "EMPTY-1" in results["reports_have_sections"].detail


# --- operational tables -----------------------------------------------------------------
@both_backends
def test_fetch_log_is_idempotent_and_joins_the_load_transaction(con) -> None:
    rows = [{"fetch_id": i, "run_id": "run-1", "source": "tiantai", "url": f"http://x/{i}",
             "outcome": "fetched", "status": 200, "attempts": 2, "retry_reasons": {"503": 1},
             "elapsed_s": 0.5, "fetched_at": "2024-03-01T02:00:00+00:00", "size": 1234}
            for i in range(3)]
    assert record_fetch_log(con, rows) == 3
    assert record_fetch_log(con, rows + rows) == 0
    load_pages(con, "run-2", [make_page()], T0,
               fetch_log_rows=[dict(rows[0], fetch_id=7, run_id=None)])
    assert one(con, "select run_id, retry_reasons->>'503', fetched_at from fetch_log "
                    "where fetch_id = 7") == ("run-2", "1", T0)
    with pytest.raises(WarehouseKeyError):
        record_fetch_log(con, [{"url": "http://x/no-id", "outcome": "fetched"}])
    with transaction(con):  # the caller's transaction spans both writes
        record_fetch_log(con, [dict(rows[0], fetch_id=8)])
        load_pages(con, "run-2", [make_page("IDX-T")], T0)
    assert one(con, "select count(*) from fetch_log") == (5,)


@both_backends
def test_runs_ledger(con) -> None:
    start_run(con, "run-1", flow_run_id="f-1", parameters={"sources": ["tiantai"]}, started_at=T0)
    finish_run(con, "run-1", status="completed", counts={"fetched": 4, "new": 3, "rejected": 1},
               sources={"tiantai": {"fetched": 4, "new": 3}, "xianju": {"error": "listing 503"}},
               finished_at=later(5))
    assert one(con, "select status, fetched, new, rejected, changed, finished_at, "
                    "parameters->>'$.sources[0]' from runs") == (
        "completed", 4, 3, 1, None, later(5), "tiantai")
    assert con.execute("select source, new, error from run_sources order by source").fetchall() == [
        ("tiantai", 3, None), ("xianju", None, "listing 503")]
    with pytest.raises(ValueError, match="unknown run counts"):
        finish_run(con, "run-1", status="completed", counts={"fetchd": 1})


@both_backends
def test_a_run_left_running_is_closed_as_failed_by_the_next(con) -> None:
    start_run(con, "killed", started_at=T0)  # its process died before finish_run
    start_run(con, "next", started_at=later(60))
    assert con.execute("select run_id, status, finished_at, message like 'abandoned: %next%' "
                       "from runs order by started_at").fetchall() == [
        ("killed", "failed", later(60), True), ("next", "running", None, None)]



# --- history: rekeyed, superseded, in conflict, gone (warehouse/writer/history.py) ----------------
def keyed(page, kind: str):
    """The page as the extractor keys it: key_kind index_no, document_id or url."""
    page.extraction.report.key_kind = kind
    return page


def stand_in(url: str, **kwargs):
    """A page that states no 索引号, keyed by its URL."""
    return keyed(make_page(url, url=url, **kwargs), "url")


def rows_keyed_by(con, key: str) -> dict[str, int]:
    """Rows under `key` in every table with an index_no column."""
    tables = ("reports", "report_versions", "report_urls", "sections", "metrics", "ranks", "search_sections")
    return {t: one(con, f"select count(*) from {t} where index_no = ?", key)[0] for t in tables}


@both_backends
def test_a_page_that_states_an_index_no_later_takes_it_with_its_whole_history(con) -> None:
    url = "http://gov.example/tiantai/report.html"
    [first] = load_pages(con, "run-1", [stand_in(url, body="正文第一版")], T0)
    assert (first.status, first.index_no) == ("new", url)
    before = rows_keyed_by(con, url)

    page = keyed(make_page("331023-01/2023-0042", url=url, body="正文第二版"), "index_no")
    [outcome] = load_pages(con, "run-2", [page], later(60))

    assert (outcome.status, outcome.reason, outcome.index_no) == ("changed", "rekeyed", "331023-01/2023-0042")
    assert rows_keyed_by(con, url) == dict.fromkeys(before, 0)  # no duplicate left under the stand-in
    after = rows_keyed_by(con, "331023-01/2023-0042")
    assert after == before | {"report_versions": 2}
    assert con.execute("select version, url, change_kind, observed_at, body_text from report_version_texts "
                       "order by version").fetchall() == [
        (1, url, "new", T0, "正文第一版"), (2, url, "content_changed", later(60), "正文第二版")]
    assert one(con, "select key_kind, former_key, version, first_seen_at from reports") == (
        "index_no", url, 2, T0)
    assert one(con, "select count(*) from latest_reports") == (1,)
    assert {r.status for r in run_checks(con, "run-2")} == {"pass"}
    checksums = table_checksums(con, DATA_TABLES)
    again = keyed(make_page("331023-01/2023-0042", url=url, body="正文第二版"), "index_no")
    assert load_pages(con, "run-3", [again], later(120))[0].status == "unchanged"
    assert table_checksums(con, DATA_TABLES) == checksums


def test_a_document_id_report_is_rekeyed_from_another_spelling_of_its_url(con) -> None:
    url = "http://gov.example/art/2023/3/31/art_1229041658_4241502.html"
    load_pages(con, "run-1", [keyed(make_page("gov.example/art:4241502", url=url), "document_id")], T0)
    moved = keyed(make_page("IDX-9", url=url + "?from=list", body="新正文"), "index_no")
    [outcome] = load_pages(con, "run-2", [moved], later(60))
    assert (outcome.status, outcome.reason) == ("changed", "rekeyed")
    assert con.execute("select index_no, former_key from reports").fetchall() == [
        ("IDX-9", "gov.example/art:4241502")]
    assert one(con, "select count(*) from report_urls where index_no = 'IDX-9'") == (2,)


def test_a_page_that_stops_stating_its_index_no_stays_its_report(con) -> None:
    url = "http://gov.example/tiantai/kept.html"
    load_pages(con, "run-1", [keyed(make_page("IDX-K", url=url), "index_no")], T0)
    [outcome] = load_pages(con, "run-2", [stand_in(url, body="改版后的页面")], later(60))
    assert (outcome.status, outcome.index_no) == ("changed", "IDX-K")
    assert con.execute("select index_no, key_kind, version from reports").fetchall() == [("IDX-K", "index_no", 2)]
    assert one(con, "select count(*) from sections where index_no <> 'IDX-K'") == (0,)


def test_a_url_stating_another_index_no_supersedes_its_old_report(con) -> None:
    urls = {key: f"http://gov.example/a/{key}.html" for key in ("A", "B", "C")}
    load_pages(con, "run-1", [make_page(key, url=url) for key, url in urls.items()], T0)
    renumbered = make_page("D", url=urls["B"], body=make_page("B").extraction.report.body_text)

    [outcome] = load_pages(con, "run-2", [renumbered], later(60))

    assert (outcome.status, outcome.index_no) == ("new", "D")
    assert con.execute("select index_no, superseded_by, superseded_at from reports order by index_no").fetchall() == [
        ("A", None, None), ("B", "D", later(60)), ("C", None, None), ("D", None, None)]
    assert [k for (k,) in con.execute("select index_no from latest_reports order by 1").fetchall()] == ["A", "C", "D"]
    per_report = dict(con.execute("select index_no, count(*) from indicator_series group by 1").fetchall())
    assert per_report == {"A": 3, "C": 3, "D": 3}  # B's figures are D's: counted once
    assert {k for (k,) in con.execute("select distinct index_no from report_outline").fetchall()} == {"A", "C", "D"}
    assert "B" not in {k for (k,) in con.execute("select index_no from search('养老床位')").fetchall()}
    assert con.execute("select index_no, url, moved_to from report_urls where url = ? order by 1",
                       [urls["B"]]).fetchall() == [("B", urls["B"], "D"), ("D", urls["B"], None)]  # the link kept
    assert {r.check_name: r.status for r in run_checks(con, "run-2")} == dict.fromkeys(
        [r.check_name for r in run_checks(con, "run-2")], "pass")
    checksums = table_checksums(con, DATA_TABLES)
    load_pages(con, "run-3", [make_page("D", url=urls["B"], body=renumbered.extraction.report.body_text)], later(90))
    assert table_checksums(con, DATA_TABLES) == checksums

    back = make_page("B", url=urls["B"])  # the page states B again: B is current, D superseded
    load_pages(con, "run-4", [back], later(120))
    assert con.execute("select index_no, superseded_by from reports where index_no in ('B', 'D') order by 1"
                       ).fetchall() == [("B", None), ("D", "B")]


def test_a_second_page_stating_an_index_no_with_other_content_is_a_conflict_not_a_version(con) -> None:
    owner, other = "http://a/col/1.html", "http://a/col/2.html"
    load_pages(con, "run-1", [make_page("IDX-C", url=owner, body="第一页的正文")], T0)
    copy = make_page("IDX-C", url=other, body="另一页的正文", fetched_at=later(1))

    [outcome] = load_pages(con, "run-2", [copy], later(60))

    assert (outcome.status, outcome.reason) == ("rejected", "conflict")
    assert con.execute("select url, owner_url, first_seen_at, last_seen_at, resolved_at from report_conflicts"
                       ).fetchall() == [(other, owner, later(60), later(60), None)]
    assert one(con, "select reason, detail like '%' || ? || '%' from rejects", owner) == ("conflict", True)
    assert one(con, "select version, url, body_text from reports") == (1, owner, "第一页的正文")
    assert one(con, "select count(*) from report_urls") == (1,)
    checksums = table_checksums(con, DATA_TABLES)
    for minutes in (90, 120):  # both pages again, in one batch and alone: no flip-flop
        load_pages(con, f"run-{minutes}", [copy, make_page("IDX-C", url=owner, body="第一页的正文")], later(minutes))
        load_pages(con, f"run-{minutes}b", [copy], later(minutes + 1))
    assert table_checksums(con, DATA_TABLES) == checksums
    assert {r.check_name: r.status for r in run_checks(con, "run-3")}["report_conflicts_unresolved"] == "warn"

    load_pages(con, "run-4", [make_page("IDX-C", url=owner, body="第一页的新正文")], later(150))
    assert one(con, "select version, body_text from reports") == (2, "第一页的新正文")  # the owner changes it
    load_pages(con, "run-5", [make_page("IDX-C", url=other, body="第一页的新正文")], later(180))
    assert one(con, "select resolved_at from report_conflicts") == (later(180),)  # the copy caught up
    assert one(con, "select count(*) from report_urls") == (2,)


def test_two_new_pages_with_one_index_no_and_other_content_keep_the_earliest(con) -> None:
    early = make_page("IDX-E", url="http://a/e1.html", body="早", fetched_at=later(1))
    late = make_page("IDX-E", url="http://a/e2.html", body="晚", fetched_at=later(2))
    outcomes = load_pages(con, "run-1", [late, early], T0)
    assert [(o.status, o.reason) for o in outcomes] == [("rejected", "conflict"), ("new", None)]
    assert one(con, "select url, body_text from reports") == ("http://a/e1.html", "早")
    assert one(con, "select url, owner_url from report_conflicts") == ("http://a/e2.html", "http://a/e1.html")


def fetch_row(fetch_id: int, url: str, outcome: str, status: int | None, at, final_url: str | None = None) -> dict:
    return {"fetch_id": fetch_id, "run_id": "run-x", "source": "tiantai", "url": url,
            "final_url": final_url or url, "outcome": outcome, "status": status, "fetched_at": at}


def test_a_report_whose_page_answers_404_or_goes_home_is_kept_and_marked_gone_until_it_answers(con) -> None:
    url, other = "http://gov.example/a/1.html", "http://gov.example/a/2.html"
    load_pages(con, "run-1", [make_page("IDX-G", url=url), make_page("IDX-H", url=other)], T0)
    record_fetch_log(con, [fetch_row(1, url, "fetched", 200, T0), fetch_row(2, other, "fetched", 200, T0)])
    assert one(con, "select count(*) from reports where gone_at is not null") == (0,)

    record_fetch_log(con, [fetch_row(3, url, "http_error", 404, later(60)),
                           fetch_row(4, other, "fetched", 200, later(60), final_url="http://gov.example/")])
    assert con.execute("select index_no, gone_at from reports order by 1").fetchall() == [
        ("IDX-G", later(60)), ("IDX-H", later(60))]
    assert con.execute("select index_no, gone_at from latest_reports order by 1").fetchall() == [
        ("IDX-G", later(60)), ("IDX-H", later(60))]  # kept, and counted: what it said was published

    record_fetch_log(con, [fetch_row(5, url, "http_error", 410, later(90)), fetch_row(6, url, "timeout", None, later(95))])
    assert one(con, "select gone_at from reports where index_no = 'IDX-G'") == (later(60),)  # since the first
    record_fetch_log(con, [fetch_row(7, url, "not_modified", 304, later(120))])
    assert con.execute("select index_no, gone_at from reports order by 1").fetchall() == [
        ("IDX-G", None), ("IDX-H", later(60))]
    [home] = load_pages(con, "run-2", [dataclasses.replace(make_page("http://gov.example/", url=other),
                                                           final_url="http://gov.example/")], later(60))
    assert (home.status, home.reason) == ("rejected", "redirected_home")  # the home page is no report
    assert one(con, "select count(*) from reports") == (2,)


def test_history_notes_say_what_a_run_found_in_one_sentence_each(con) -> None:
    load_pages(con, "run-1", [make_page("A", url="http://a/1.html"), make_page("B", url="http://a/2.html")], T0)
    assert history_notes(con, T0) == []
    load_pages(con, "run-2", [make_page("C", url="http://a/2.html", body=make_page("B").extraction.report.body_text),
                              make_page("A", url="http://a/9.html", body="另一页")], later(60))
    record_fetch_log(con, [fetch_row(1, "http://a/1.html", "http_error", 410, later(61))])
    assert history_notes(con, later(30)) == [
        "1 report(s) whose page is gone (404/410 or the home page; kept, reports.gone_at): A (http://a/1.html)",
        "1 report(s) superseded by the key their page states now (reports.superseded_by): B → C",
        "1 page(s) stating a 索引号 another page keeps, with other content (report_conflicts): "
        "http://a/9.html (A, kept by http://a/1.html)"]
    assert history_notes(con, later(90)) == []
