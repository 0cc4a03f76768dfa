"""The nightly and reprocess flows with their extract batches on a 2-worker Dask LocalCluster
(flows/cluster.py): what a user would notice.

- the same pages give the same rows, on Dask as in the flow's process (nightly and
  reprocess), and a rerun on Dask writes nothing;
- the batches really ran in the workers (the run's log names them), never here;
- fetching stays in the flow's process: every request to the loopback server came from it,
  one at a time, the host's interval apart, while the batches were extracted on Dask;
- where to extract said two ways at once stops at once (exit 2, one line); a cluster that
  cannot be reached fails the run with a readable reason.

One module fixture runs the nightly flow twice over the sample site (in the flow's process,
then on Dask); the other tests add what they need. A LocalCluster costs a few seconds to
start on this machine, so every Dask run here is one that says something of its own.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml

from flows.cluster import ClusterConfigError, ExtractOn
from flows.nightly import nightly
from flows.reprocess import reprocess
from sample_site import SampleSiteServer
from sample_site.content import load_sample_sites
from tasks.settings import PROJECT_ROOT
from warehouse.backend.connect import connect
from warehouse.schema.tables import data_tables
from tests.faultserver import FakeSite, FaultRequestHandler, FaultServer, Handler, report_page

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

WORKERS = 2
BATCH = 8  # pages per extract batch: the sample site's 45 pages make 6 batches, enough for both workers
ON_CLUSTER = f"extract batches run on a Dask LocalCluster of {WORKERS} worker process(es): {WORKERS} worker(s)"
_EXTRACTED_BY = re.compile(r"pid (\d+): (?:compiled|interpreted) extractor")


# --- helpers -------------------------------------------------------------------------------
def _content(warehouse: Path) -> dict[str, list[tuple]]:
    """Every data table's rows, sorted, without what differs between two runs of the same
    pages: run and load ids, surrogate ids, and timestamps (kept only as set or not)."""
    tables = {}
    with connect(str(warehouse), read_only=True) as con:
        for table in data_tables():
            columns = [(name, kind) for name, kind, *_ in con.execute(f"describe {table}").fetchall()
                       if name not in ("run_id", "load_id", "fetch_id", "doc_id")]  # fmt: skip
            select = ", ".join(f"{name} is null" if kind.startswith("TIMESTAMP") else name for name, kind in columns)
            tables[table] = con.execute(f"select {select} from {table} order by all").fetchall()
    return tables


def _checksums(warehouse: Path) -> dict[str, tuple]:
    with connect(str(warehouse), read_only=True) as con:
        return {t: con.execute(f"select count(*), sum(hash(t)) from {t} as t").fetchone() for t in data_tables()}


def _totals(rows: list[dict]) -> dict:
    return next(row for row in rows if row["source"] == "TOTAL")


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def _cluster_log() -> Iterator[list[str]]:
    """What flows/cluster.py says in the block (on its own logger, or the flow run's), whatever
    the loggers' levels."""
    lines: list[str] = []
    handler = _Collect(lines)
    loggers = [logging.getLogger(name) for name in ("flows.cluster", "prefect.flow_runs")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)


def _worker_pids(lines: list[str]) -> set[int]:
    """The processes the run's "extracted by: …" line says extracted its batches."""
    said = [line for line in lines if line.startswith("extracted by: ")]
    assert len(said) == 1, lines
    return {int(pid) for pid in _EXTRACTED_BY.findall(said[0])}


def _cli(module: str, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    assert os.environ.get("PREFECT_API_URL"), "the prefect_api fixture exports the session's server"
    return subprocess.run([sys.executable, "-m", module, *args], cwd=PROJECT_ROOT, env=os.environ | env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _sources_for(site: SampleSiteServer, path: Path) -> Path:
    path.write_text((PROJECT_ROOT / "sources.yaml").read_text(encoding="utf-8").replace(
        "${SAMPLE_SITE_URL:-http://127.0.0.1:8765}", site.base_url.rstrip("/")), encoding="utf-8")  # fmt: skip
    return path


# --- the nightly flow over the sample site, here and on Dask --------------------------------
@dataclass
class Place:
    """A warehouse and its raw archive, side by side under one directory."""

    root: Path

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def archive(self) -> Path:
        return self.root / "archive"


@dataclass
class NightlyRuns:
    sources: Path
    here: Place  # the nightly flow in the flow's process
    dask: Place  # the same on a 2-worker LocalCluster
    here_rows: list[dict]
    dask_rows: list[dict]
    dask_log: list[str]  # what flows/cluster.py said during the Dask run


@pytest.fixture(scope="module")
def runs(prefect_api: str, sample_site: SampleSiteServer, tmp_path_factory: pytest.TempPathFactory) -> NightlyRuns:
    tmp = tmp_path_factory.mktemp("dask")
    sources = _sources_for(sample_site, tmp / "sources.yaml")
    here, dask = Place(tmp / "here"), Place(tmp / "dask")

    def run(place: Place, **extra: object) -> list[dict]:
        return nightly(sources_file=str(sources), warehouse_path=str(place.warehouse), archive=str(place.archive),
                       batch_size=BATCH, **extra)  # fmt: skip

    here_rows = run(here)
    with _cluster_log() as dask_log:
        dask_rows = run(dask, dask_workers=WORKERS)
    return NightlyRuns(sources, here, dask, here_rows, dask_rows, dask_log)


def test_nightly_on_dask_loads_exactly_what_the_in_process_run_loads(runs: NightlyRuns):
    listed = sum(len(site.articles) for site in load_sample_sites())
    for rows in (runs.here_rows, runs.dask_rows):
        total = _totals(rows)
        assert total["new"] == total["fetched"] == listed
        assert total["failed"] == total["rejected"] == 0
    assert {r["source"]: r["new"] for r in runs.dask_rows} == {r["source"]: r["new"] for r in runs.here_rows}
    here, dask = _content(runs.here.warehouse), _content(runs.dask.warehouse)
    assert {t: len(rows) for t, rows in dask.items()} == {t: len(rows) for t, rows in here.items()}
    assert len(dask["metrics"]) > 100 and len(dask["sections"]) > listed  # a real comparison, not of two empties
    for table in here:
        assert dask[table] == here[table], f"{table} differs between the in-process and the Dask run"


def test_the_batches_ran_on_the_cluster_workers_not_in_the_flows_process(runs: NightlyRuns):
    assert ON_CLUSTER in runs.dask_log
    workers = _worker_pids(runs.dask_log)
    assert workers and len(workers) <= WORKERS and os.getpid() not in workers
    with connect(str(runs.dask.warehouse), read_only=True) as con:
        status, timings = con.execute("select status, timings from runs order by started_at desc limit 1").fetchone()
    assert status == "completed"
    assert "extract.workers" in str(timings)  # the workers' own extracting seconds, beside the driver's wait


def test_a_rerun_on_dask_writes_nothing(runs: NightlyRuns):
    before = _checksums(runs.dask.warehouse)
    rows = nightly(sources_file=str(runs.sources), warehouse_path=str(runs.dask.warehouse),
                   archive=str(runs.dask.archive), batch_size=BATCH, dask_workers=WORKERS,
                   revalidate_after_hours=0)  # every known page re-checked: a 304 each  # fmt: skip
    total = _totals(rows)
    assert total["new"] == total["changed"] == total["fetched"] == 0
    assert total["not_modified"] == sum(len(site.articles) for site in load_sample_sites())
    assert _checksums(runs.dask.warehouse) == before


# --- reprocess: the archive extracted again ------------------------------------------------
@pytest.fixture(scope="module")
def cli_reprocess(runs: NightlyRuns, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """`python -m flows.reprocess --dask-workers 2`, as an operator runs it, rebuilding a new
    warehouse from the in-process run's raw archive; its output and the warehouse."""
    warehouse = tmp_path_factory.mktemp("cli-reprocess") / "dask.duckdb"
    done = _cli("flows.reprocess", "--sources", str(runs.sources), "--warehouse", str(warehouse), "--archive",
                str(runs.here.archive), "--batch-size", str(BATCH), "--dask-workers", str(WORKERS))  # fmt: skip
    return done, warehouse


def test_reprocess_on_dask_gives_the_rows_of_the_in_process_reprocess(runs: NightlyRuns, cli_reprocess, tmp_path: Path):
    """Both rebuild a new warehouse from the same raw archive: every page extracted again and loaded."""
    here = tmp_path / "here.duckdb"
    reprocess(sources_file=str(runs.sources), warehouse_path=str(here), archive=str(runs.here.archive),
              batch_size=BATCH)  # fmt: skip
    done, dask = cli_reprocess
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "extract.workers" in done.stderr  # the summary's seconds: extracted on workers
    listed = sum(len(site.articles) for site in load_sample_sites())
    rebuilt = _content(dask)
    assert len(rebuilt["reports"]) == listed and len(rebuilt["metrics"]) > 100
    assert rebuilt == _content(here)


def test_reprocess_on_dask_over_its_own_warehouse_writes_nothing(runs: NightlyRuns):
    """Every archived page extracted again on the workers, found unchanged, nothing written."""
    before = _checksums(runs.dask.warehouse)
    with _cluster_log() as log:
        reprocess(sources_file=str(runs.sources), warehouse_path=str(runs.dask.warehouse),
                  archive=str(runs.dask.archive), batch_size=BATCH, dask_workers=WORKERS)  # fmt: skip
    assert ON_CLUSTER in log and os.getpid() not in _worker_pids(log)
    with connect(str(runs.dask.warehouse), read_only=True) as con:
        status, unchanged, new, changed = con.execute("select status, unchanged, new, changed from runs "
                                                      "order by started_at desc limit 1").fetchone()  # fmt: skip
    assert (status, new, changed) == ("completed", 0, 0)
    assert unchanged == sum(len(site.articles) for site in load_sample_sites())
    assert _checksums(runs.dask.warehouse) == before


def test_a_command_line_run_says_where_its_batches_were_extracted(cli_reprocess):
    done, _ = cli_reprocess
    assert done.returncode == 0, done.stderr[-3000:]
    assert ON_CLUSTER in done.stderr
    assert "extracted by: " in done.stderr


# --- fetching stays here: per-host politeness -----------------------------------------------
RATE = 10.0  # requests/s to the one host of two sources


def test_fetching_stays_in_the_flows_process_and_polite_while_extracting_on_dask(prefect_api: str,
                                                                                 tmp_path: Path):  # fmt: skip
    """Two sources on one host, paced at RATE: every request came from this process (the
    client's socket is one of ours), one host interval apart, the two sources together,
    while their pages were extracted on the workers."""
    with FaultServer(routes={}) as server:
        sites = [FakeSite(server, prefix) for prefix in ("/a", "/b")]
        for n, site in enumerate(sites):
            for i in range(5):
                site.article(f"{i}.html", report_page(f"001{n}/2023-{i:05d}", extra=f"第{i}项。"))
        ours: list[bool] = []

        def ours_only(handler: Handler) -> Handler:
            def serve(req: FaultRequestHandler, hit: int) -> None:
                port = req.client_address[1]
                ours.append(any(c.laddr and c.laddr.port == port and c.raddr and c.raddr.port == server.port
                                for c in psutil.Process().net_connections(kind="tcp")))  # fmt: skip
                handler(req, hit)
            return serve

        server.routes = {path: ours_only(handler) for path, handler in server.routes.items()}
        sources = tmp_path / "sources.yaml"
        entries = [site.source(f"county-{n}", rate_limit_per_second=RATE) for n, site in enumerate(sites)]
        sources.write_text(yaml.safe_dump({"sources": entries}, allow_unicode=True), encoding="utf-8")
        with _cluster_log() as log:
            rows = nightly(sources_file=str(sources), warehouse_path=str(tmp_path / "w.duckdb"),
                           archive=str(tmp_path / "archive"), batch_size=2, dask_workers=WORKERS)  # fmt: skip
        moments = sorted(t for path in list(server.routes) for t in server.arrivals(path))
    assert _totals(rows)["new"] == 10 and ON_CLUSTER in log and os.getpid() not in _worker_pids(log)
    assert len(moments) == len(ours) == 13  # robots.txt, two listings, ten pages: each once
    assert all(ours), "a request to the site came from another process than the flow's"
    gaps = [b - a for a, b in zip(moments, moments[1:])]
    # Load only widens the gaps; half an interval allows for the server's own scheduling.
    assert min(gaps) >= 0.5 / RATE, gaps
    assert moments[-1] - moments[0] >= (len(moments) - 1) / RATE - 0.05


# --- configuration errors -------------------------------------------------------------------
def test_workers_and_an_address_together_are_refused():
    with pytest.raises(ClusterConfigError, match="not both"):
        ExtractOn(2, "tcp://scheduler:8786")
    with pytest.raises(ClusterConfigError, match=">= 0"):
        ExtractOn(-1)
    assert ExtractOn().in_process and not ExtractOn(2).in_process and not ExtractOn(0, "tcp://s:8786").in_process


@pytest.mark.parametrize("module", ["flows.nightly", "flows.reprocess"])
def test_workers_and_an_address_on_the_command_line_exit_2_in_one_line(module: str, tmp_path: Path):
    warehouse = tmp_path / "w.duckdb"
    done = subprocess.run([sys.executable, "-m", module, "--warehouse", str(warehouse), "--dask-workers", "2",
                           "--dask-address", "tcp://127.0.0.1:1"], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert errors == [f"python -m {module}: error: argument --dask-address: not allowed with argument --dask-workers"]
    assert "Traceback" not in done.stderr and not warehouse.exists()


def test_workers_from_the_environment_and_an_address_exit_2_before_any_fetch(runs: NightlyRuns, tmp_path: Path):
    done = _cli("flows.nightly", "--sources", str(runs.sources), "--warehouse", str(tmp_path / "w.duckdb"),
                "--dask-address", "tcp://127.0.0.1:1", GOVETL_DASK_WORKERS="2")  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "not both" in done.stderr and not (tmp_path / "archive").exists()


def test_an_unreachable_cluster_fails_the_run_with_a_reason_and_no_traceback(runs: NightlyRuns, tmp_path: Path):
    warehouse = tmp_path / "w.duckdb"
    done = _cli("flows.reprocess", "--sources", str(runs.sources), "--warehouse", str(warehouse), "--archive",
                str(runs.here.archive), "--dask-address", "tcp://127.0.0.1:1",
                DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")  # not distributed's 30 s  # fmt: skip
    assert done.returncode == 1
    said = [line for line in done.stderr.splitlines() if line.startswith("reprocessing failed: ")]
    assert len(said) == 1 and "tcp://127.0.0.1:1" in said[0], done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    with connect(str(warehouse), read_only=True) as con:
        status, message = con.execute("select status, message from runs order by started_at desc limit 1").fetchone()
    assert status == "failed" and "tcp://127.0.0.1:1" in message


def test_a_run_in_process_never_imports_dask():
    # distributed costs every run a quarter second and ~25 MB at start-up: only Dask runs pay it.
    probe = "import sys, flows.nightly, flows.reprocess; print(sorted({'dask', 'distributed'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_a_worker_of_a_local_cluster_logs_no_failed_heartbeat_but_its_other_errors(caplog):
    """A LocalCluster's scheduler may close between two heartbeats of a worker as the run
    stops: that heartbeat's traceback is no error of the run (flows/worker_plugins.py)."""
    from flows.worker_plugins import QuietHeartbeat, _not_a_failed_heartbeat

    logger = logging.getLogger("distributed.worker")
    QuietHeartbeat().setup(worker=None)
    try:
        with caplog.at_level(logging.INFO, logger="distributed.worker"):
            try:
                raise OSError("Timed out trying to connect to tcp://127.0.0.1:1 after 30 s")
            except OSError:
                logger.exception("Failed to communicate with scheduler during heartbeat.")
                logger.exception("Unexpected exception during heartbeat. Closing worker.")
        assert [r.getMessage() for r in caplog.records if r.name == "distributed.worker"] == [
            "Unexpected exception during heartbeat. Closing worker."]
    finally:
        logger.removeFilter(_not_a_failed_heartbeat)
