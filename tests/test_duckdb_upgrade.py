"""The move from DuckDB 2.0 to 1.5.5: a 2.0 warehouse is refused in one line that names the
command converting it, and that command carries it over whole.

The 2.0 warehouse is made by a real DuckDB 2.0 process: the project's own writer, run
under DuckDB 2.0.0 (installed by warehouse.backend.upgrade.install_duckdb into build/, as the
conversion itself does) without migration 0008, as the warehouses written under 2.0 are.
That install needs the package registry once: without it these tests skip, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tasks.settings import PROJECT_ROOT
from warehouse.backend.connect import connect, open_for_reading, snapshot_path, storage_header
from warehouse.backend.errors import WarehouseFormatError
from warehouse.backend.upgrade import UpgradeError, install_duckdb, upgrade
from warehouse.writer.load import load_pages
from tests.reports import later, make_page, sections_for

OLD_DUCKDB = "2.0.0"
COMPARED = ("reports", "report_versions", "report_urls", "sections", "metrics", "ranks", "rejects", "runs",
            "run_sources", "loads", "fetch_log", "dq_results", "search_sections")


@pytest.fixture(scope="module")
def duckdb2() -> Path:
    try:
        return install_duckdb(OLD_DUCKDB)
    except UpgradeError as exc:
        pytest.skip(f"a DuckDB {OLD_DUCKDB} warehouse needs DuckDB {OLD_DUCKDB} from the package registry: {exc}")


# Run under DuckDB 2.0 with the project on its path: the writer as it was before migration
# 0008 (the loader's index step of then, no whole-word views), loading reports, a second version
# of one, a reject, a run with its checks and fetch log; then the analysts' snapshot.
_MAKE_2_0_WAREHOUSE = r"""
import importlib, json, shutil, sys
from pathlib import Path
import duckdb
assert duckdb.__version__ == sys.argv[2], duckdb.__version__
path, work = Path(sys.argv[1]), Path(sys.argv[1]).parent
migrations, views = work / "migrations-0007", work / "views-0007"
migrate = importlib.import_module("warehouse.schema.migrate")
migrations.mkdir()
for m in migrate.list_migrations():
    if m.version not in (8, 13):  # a warehouse before 0008 is before 0013 too (it remakes search_sections)
        shutil.copy(m.path, migrations / m.name)
shutil.copytree(migrate.VIEWS_DIR, views, ignore=shutil.ignore_patterns("60_search.sql"))
migrate.MIGRATIONS_DIR, migrate.VIEWS_DIR = migrations, views
importlib.import_module("warehouse.backend.connect").STORAGE_VERSION = "latest"  # 2.0's own format
from tests.test_search import _SEARCH_INDEX_0007, _pages
importlib.import_module("warehouse.writer.load")._index_sections = lambda c, *_: c.execute(_SEARCH_INDEX_0007)
from warehouse import connect, finish_run, load_pages, record_fetch_log, run_checks, snapshot, start_run
from tests.reports import T0, later, make_page
con = connect(path)
start_run(con, "run-1", parameters={"sources": ["tiantai"]}, started_at=T0)
load_pages(con, "run-1", _pages() + [make_page(None)], T0,
           fetch_log_rows=[{"fetch_id": 1, "source": "tiantai", "url": "http://x/1", "outcome": "fetched",
                            "retry_reasons": {"503": 1}, "fetched_at": T0}])
load_pages(con, "run-1", [make_page("A-1", body="修订后的正文", metrics=[], ranks=[])], later(5))
run_checks(con, "run-1")
finish_run(con, "run-1", status="completed", counts={"new": 3, "changed": 1, "rejected": 1},
           sources={"tiantai": {"new": 3}}, timings={"load": 0.5})
con.close()
snapshot(path)
"""


@pytest.fixture
def warehouse_v2(duckdb2: Path, tmp_path: Path) -> Path:
    path = tmp_path / "data" / "warehouse.duckdb"
    path.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(duckdb2), str(PROJECT_ROOT)])}
    done = subprocess.run([sys.executable, "-c", _MAKE_2_0_WAREHOUSE, str(path), OLD_DUCKDB], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert storage_header(path) == (999, OLD_DUCKDB)
    return path


def _contents(duckdb_dir: Path | None, path: Path) -> dict:
    """Row counts of every table, and the rows of the history tables, as the DuckDB in
    `duckdb_dir` (None: this one) reads them."""
    script = r"""
import json, sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
tables = [t for (t,) in con.execute("select table_name from duckdb_tables() where schema_name = 'main'").fetchall()]
rows = lambda sql: [list(map(str, r)) for r in con.execute(sql).fetchall()]
print(json.dumps({
    "counts": {t: con.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables},
    "report_versions": rows("select * from report_versions order by index_no, version"),
    "migrations": rows("select * from schema_migrations order by version"),
    "runs": rows("select * from runs order by run_id"),
    "max_doc_id": con.execute("select max(doc_id) from search_sections").fetchone()[0],
}, ensure_ascii=False))
"""
    env = {**os.environ, "PYTHONPATH": str(duckdb_dir)} if duckdb_dir else dict(os.environ)
    command = [sys.executable, "-S", "-c", script, str(path)] if duckdb_dir else [sys.executable, "-c", script, str(path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_2_0_warehouse_is_refused_in_one_line_that_names_the_conversion(warehouse_v2) -> None:
    with pytest.raises(WarehouseFormatError) as refused:
        connect(warehouse_v2)
    message = str(refused.value)
    assert "\n" not in message and str(warehouse_v2) in message and "DuckDB 2.0.0" in message
    assert f"python -m warehouse.backend.upgrade {warehouse_v2}" in message
    # a nightly run stops before it starts (no crawl, no Prefect server), in that one line
    done = subprocess.run([sys.executable, "-m", "flows.nightly", "--warehouse", str(warehouse_v2)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (1, "", f"nightly run failed: {message}\n")
    # the readers open the analysts' snapshot, a copy in the same format: converting the
    # warehouse publishes it again
    snapshot = snapshot_path(warehouse_v2)
    export_dir = warehouse_v2.parent / "parquet"
    for command in (["warehouse.analyst.examples", "--warehouse", warehouse_v2],
                    ["warehouse.analyst.export", "--out", export_dir, "--warehouse", snapshot],
                    ["warehouse.backend.upgrade", "--check", snapshot]):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", *map(str, command)], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 1, command
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(f"{snapshot} is in the storage format of DuckDB 2.0.0"), command
        assert line.endswith(f"convert the warehouse it is a snapshot of once with "
                             f"`python -m warehouse.backend.upgrade {warehouse_v2}` (it keeps a backup)"), command
    assert not export_dir.exists()  # the refused export wrote nothing, not even its folder


def test_the_conversion_carries_everything_over(duckdb2, warehouse_v2) -> None:
    before = _contents(duckdb2, warehouse_v2)
    done = subprocess.run([sys.executable, "-m", "warehouse.backend.upgrade", str(warehouse_v2)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "row counts equal" in done.stdout and "0008_search_words.sql" in done.stdout

    after = _contents(None, warehouse_v2)
    assert {t: after["counts"][t] for t in COMPARED} == {t: before["counts"][t] for t in COMPARED}
    assert after["report_versions"] == before["report_versions"] and len(before["report_versions"]) == 4
    assert after["runs"] == before["runs"]
    assert [m for m in after["migrations"] if m[0] not in ("8", "13")] == before["migrations"]  # applied_at as it was
    assert [m[1] for m in after["migrations"] if m[0] in ("8", "13")] == ["0008_search_words.sql",
                                                                         "0013_child_keys_kept_by_loader.sql"]
    assert storage_header(warehouse_v2)[1] == duckdb.__version__
    backup = warehouse_v2.with_name("warehouse.duckdb.v2.0.0.bak")
    assert storage_header(backup) == (999, OLD_DUCKDB) and _contents(duckdb2, backup) == before

    con = connect(warehouse_v2)
    try:
        assert con.execute("select count(*) from search_sections where words is null").fetchone() == (0,)
        assert {r[0] for r in con.execute("select index_no from search('养老床位')").fetchall()} == {"A-1", "C-1"}
        # the doc id sequence goes on past the ids given out under DuckDB 2.0
        load_pages(con, "run-2", [make_page("C-1", source="cixi", region="慈溪市", body="v2",
                                            sections=sections_for("C-1", plan_text="推进殡葬改革。"))], later(60))
        (first_new,) = con.execute("select min(doc_id) from search_sections where index_no = 'C-1'").fetchone()
        assert first_new > before["max_doc_id"]
    finally:
        con.close()
    reader, opened = open_for_reading(warehouse_v2)  # the analysts' snapshot was published again
    with reader:
        assert opened == snapshot_path(warehouse_v2) and reader.execute("select count(*) from reports").fetchone() == (3,)


def test_a_warehouse_in_this_duckdbs_format_needs_no_conversion(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    connect(path).close()
    assert upgrade(path) is None
    done = subprocess.run([sys.executable, "-m", "warehouse.backend.upgrade", "--check", str(path)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
