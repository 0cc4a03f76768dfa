"""The load step's isolation: one odd page never fails a batch, nor the run."""

from __future__ import annotations

from tasks.steps import load_isolating
from warehouse.backend.connect import connect, memory_limit
from warehouse.writer.load import StagedPages, load_pages
from tests.reports import T0, make_page


def test_a_batch_too_big_for_the_memory_budget_is_loaded_under_a_larger_one(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    huge = "养老床位提高至1005元/月，" * 400_000  # ~13 MB of text in one paragraph
    pages = [make_page("N-1"), make_page("BIG-1", body=huge), make_page("N-2")]
    with memory_limit(con, "24MB"):  # a writer budget the big page cannot fit in
        outcomes = load_isolating(con, "run-1", pages, T0)
        restored = con.execute("select current_setting('memory_limit')").fetchone()[0]
        assert restored.startswith("22.") and restored.endswith("MiB")  # the small budget again, not 1GB
    assert [o.status for o in outcomes] == ["new", "new", "new"]
    assert con.execute("select length(body_text) from reports where index_no = 'BIG-1'").fetchone() == (len(huge),)
    assert con.execute("select count(*) from rejects").fetchone() == (0,)


def test_a_page_the_warehouse_cannot_hold_under_any_budget_is_quarantined_and_the_rest_load(tmp_path, monkeypatch):
    # DuckDB 1.5.5 keeps some 12 MB of a failed copy in use until the connection closes: a
    # budget with room for that and the small pages, none for the big one
    monkeypatch.setattr("tasks.settings.WAREHOUSE_MEMORY_LIMIT_LARGE", "40MB")
    con = connect(tmp_path / "w.duckdb")
    huge = "养老床位提高至1005元/月，" * 400_000
    pages = [make_page("N-1"), make_page("BIG-1", body=huge), make_page("N-2")]
    with memory_limit(con, "40MB"):
        outcomes = load_isolating(con, "run-1", pages, T0)
    assert sorted(con.execute("select index_no from reports").fetchall()) == [("N-1",), ("N-2",)]
    rejects = con.execute("select reason, detail from rejects").fetchall()
    assert len(rejects) == 1 and rejects[0][0] == "load_error" and "OutOfMemoryException" in rejects[0][1]
    assert [o.status for o in outcomes].count("new") == 2


def test_a_budget_too_small_for_ordinary_batches_slows_loads_but_loses_nothing(tmp_path, caplog):
    con = connect(tmp_path / "w.duckdb")
    pages = [make_page(f"N-{i}") for i in range(40)]
    with memory_limit(con, "8MB"):  # far below what any batch needs, in statements or at commit
        outcomes = load_isolating(con, "run-1", pages, T0)
    assert [o.status for o in outcomes] == ["new"] * 40
    assert con.execute("select count(*) from reports").fetchone() == (40,)
    assert con.execute("select count(*) from rejects").fetchone() == (0,)
    assert "retried under" in caplog.text  # the operator is told to raise the budget


def test_a_page_bigger_than_the_staging_budget_is_staged_under_the_writers_in_the_same_transaction(
        tmp_path, monkeypatch, caplog):  # fmt: skip
    monkeypatch.setattr("tasks.settings.WAREHOUSE_STAGING_MEMORY_LIMIT", "12MB")
    con = connect(tmp_path / "w.duckdb")
    huge = "养老床位提高至1005元/月，" * 400_000  # ~18 MB as UTF-8: more than the staging budget
    outcomes = load_pages(con, "run-1", [make_page("N-1"), make_page("BIG-1", body=huge)], T0)
    assert [o.status for o in outcomes] == ["new", "new"]
    assert con.execute("select length(body_text) from reports where index_no = 'BIG-1'").fetchone() == (len(huge),)
    assert con.execute("select count(*) from loads").fetchone() == (1,)  # one transaction, nothing retried
    assert "retried under" not in caplog.text and "loaded again" not in caplog.text
    assert con.execute("select current_setting('memory_limit')").fetchone()[0].startswith("91.5")  # the writer's


def test_staged_rows_past_the_staging_budget_wait_on_disk_until_the_merge(tmp_path, monkeypatch):
    monkeypatch.setattr("warehouse.writer.load.HOLD_ROWS", 1)  # copy each batch into the staged tables as it comes
    con = connect(tmp_path / "w.duckdb")
    body = "全年新增养老床位120张，护理型床位占比60%。" * 5_000  # ~300 KB a page: 45 MB for 150 pages
    pages = [make_page(f"P-{i}", body=body + str(i)) for i in range(150)]
    with StagedPages(con, "run-1", T0) as staged:
        for start in range(0, len(pages), 50):
            staged.add(pages[start:start + 50])
        in_memory, on_disk = con.execute("select sum(memory_usage_bytes), sum(temporary_storage_bytes) "
                                         "from duckdb_memory()").fetchone()
        outcomes = staged.commit()
    assert on_disk > 20 * 2**20 and in_memory < 40 * 2**20  # the staging budget (32MB) and a little
    assert [o.status for o in outcomes] == ["new"] * 150
    assert con.execute("select count(*), sum(length(body_text)) from reports").fetchone() == (
        150, sum(len(p.extraction.report.body_text) for p in pages))


def test_the_writer_appends_row_groups_of_the_configured_size_and_readers_see_them(tmp_path, monkeypatch):
    monkeypatch.setattr("tasks.settings.WAREHOUSE_ROW_GROUP_SIZE", 2048)
    path = tmp_path / "memory.duckdb"  # named like DuckDB's in-memory catalog: attached under another name
    con = connect(path)
    assert con.execute("select current_setting('temp_directory')").fetchone() == (f"{path}.tmp",)
    load_pages(con, "run-1", [make_page(f"R-{i}") for i in range(1_000)], T0)  # 5 metrics each
    con.execute("checkpoint")
    groups = con.execute("select row_group_id, max(count) from pragma_storage_info('metrics') "
                         "where segment_type <> 'VALIDITY' group by all").fetchall()
    assert len(groups) == 3 and max(rows for _, rows in groups) == 2048  # 5,000 rows in groups of 2,048
    con.close()
    reader = connect(path, read_only=True)
    assert reader.execute("select count(*) from metrics").fetchone() == (5_000,)
