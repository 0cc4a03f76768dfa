"""The load step's isolation: one odd page never fails a batch, nor the run."""

from __future__ import annotations

from tasks.steps import load_isolating
from warehouse.backend.connect import connect, memory_limit
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
