"""Where a run's extract batches run: in the flow's process (the default), or on Dask.

    python -m flows.reprocess --warehouse W --dask-workers 2                # a LocalCluster for the run
    python -m flows.nightly --warehouse W --dask-address tcp://sched:8786   # an existing cluster

(or GOVETL_DASK_WORKERS / GOVETL_DASK_ADDRESS, or the `dask_workers` / `dask_address`
parameters of prefect.yaml). On Dask, each batch is the `extract_batch` task run through
Prefect's DaskTaskRunner (prefect-dask): a Prefect task run on a worker, in the flow run's UI.

Only extraction moves; the flow's process keeps the rest:
- **Fetching** stays here. Per-host politeness (the rate limit, robots.txt, Retry-After) is
  state the crawl keeps for each host in this one process, and fetching is I/O bound (a
  thread waits on a socket); no worker ever requests a page, so the politeness holds across
  all workers by construction.
- **The raw archive and the warehouse** stay here: the archive is read here, the warehouse
  has one writer (tasks/steps.py: BatchLoader).
- **What a worker needs travels with the task**, never as a path: each page's bytes
  (tasks/pages.py: ArchivedPage), the sources of the batch as data (Source). The extractor
  is the worker's installed govetl (the same release as the flow's); its mypyc build is
  shipped to each worker (flows/worker_plugins.py) and used only where it matches the
  worker's sources. Every task says which extractor ran where; the run's log lists them,
  and warns of a worker that ran the interpreted one.
- **Results come back in order**: up to `lookahead` batches are in flight; the driver loads
  batch k while the workers extract the next ones, so extracting and loading overlap.
- **A worker that dies** loses nothing: Dask runs its tasks again elsewhere (extracting is
  pure), and the driver loads each batch once, when its result arrives. A batch that cannot
  be extracted at all (the cluster gone, a page that kills worker after worker: Dask's
  KilledWorker) fails the run with that reason: what was committed stays, the rest stays
  unloaded in the archive, and the next run loads it.
- **Prefect**: a worker reports its task runs to the flow's Prefect API. A LocalCluster's
  workers are told its address (the temporary server's too); an existing cluster's workers
  must have PREFECT_API_URL set to a server they can reach.
- **Stopping**: a LocalCluster's workers are children of the flow's process, ignore the
  terminal's Ctrl-C, and end with it (flows/interrupt.py kills them; distributed has them
  exit when their parent dies, even by kill -9).
"""

from __future__ import annotations

import argparse
import logging
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from prefect.settings import PREFECT_API_URL

from flows import interrupt
from flows.runner import RunFailed
from tasks import settings
from tasks.crawl.archive import ArchivedFetch, RawArchive
from tasks.pages import ArchivedPage
from tasks.records import PageRecord, Source
from tasks.steps import Timed, extract_batch, extractor_note

log = logging.getLogger(__name__)

LOOKAHEAD_PER_WORKER = 2  # extract batches in flight per worker: one running, one queued behind it


@dataclass(frozen=True)
class ExtractOn:
    """Where extract batches run (configuration as data): `workers` > 0 starts a LocalCluster
    of that many worker processes for the run; `address` connects to an existing scheduler;
    neither, this process."""

    workers: int = 0
    address: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ClusterConfigError(f"dask workers: expected a number >= 0, not {self.workers}")
        if self.workers and self.address:
            raise ClusterConfigError("give either a number of Dask workers (a LocalCluster for the run) or the address "
                                     f"of an existing cluster, not both ({self.workers} workers, {self.address})")  # fmt: skip

    @property
    def in_process(self) -> bool:
        return not self.workers and not self.address

    def describe(self) -> str:
        if self.address:
            return f"the Dask cluster at {self.address}"
        if self.workers:
            return f"a Dask LocalCluster of {self.workers} worker process(es)"
        return "the flow's process"


@dataclass
class Extracted:
    """One extract batch, done: its fetches, their PageRecords (in order), where it ran."""

    number: int
    fetches: list[ArchivedFetch]
    pages: list[PageRecord]
    seconds: float  # spent extracting it, wherever it ran
    notes: list[str] = field(default_factory=list)


class Extractor(Protocol):
    def run(self, chunks: Iterable[list[ArchivedFetch]], archive: RawArchive,
            sources: dict[str, Source]) -> Iterator[Extracted]: ...  # fmt: skip


class ClusterConfigError(RunFailed):
    """Where to extract is said two ways at once, or in a way that means nothing."""


class ExtractFailed(RunFailed):
    """An extract batch could not be extracted on the cluster; the message says why and what is kept."""


def add_dask_arguments(parser: argparse.ArgumentParser) -> None:
    """--dask-workers N | --dask-address tcp://…: where the flow's extract batches run."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dask-workers", type=int, default=settings.DASK_WORKERS, metavar="N",
                       help="extract on a Dask LocalCluster of N worker processes started for the run "
                            "(default: GOVETL_DASK_WORKERS, else 0: in the flow's process)")
    where.add_argument("--dask-address", default=settings.DASK_ADDRESS, metavar="tcp://HOST:PORT",
                       help="extract on the existing Dask cluster whose scheduler is there; its workers need "
                            "PREFECT_API_URL (default: GOVETL_DASK_ADDRESS)")


def sources_of(chunk: list[ArchivedFetch], sources: dict[str, Source]) -> dict[str, Source]:
    """The configuration a batch needs, as data: the sources its pages come from."""
    return {f.source: sources[f.source] for f in chunk if f.source in sources}


def read_pages(chunk: list[ArchivedFetch], archive: RawArchive) -> list[ArchivedPage]:
    return [ArchivedPage(f, archive.body(f.fetch_id)) for f in chunk]


class InProcess:
    """Each batch extracted in this process, one after the other, as its own task run."""

    def run(self, chunks: Iterable[list[ArchivedFetch]], archive: RawArchive,
            sources: dict[str, Source]) -> Iterator[Extracted]:  # fmt: skip
        for number, chunk in enumerate(chunks):
            done = extract_batch(read_pages(chunk, archive), sources_of(chunk, sources), number)
            yield Extracted(number, chunk, done.value, done.seconds, done.notes)


class OnDask:
    """Batches submitted to the cluster `lookahead` ahead, their results yielded in order."""

    def __init__(self, runner: Any, lookahead: int) -> None:
        self.runner, self.lookahead = runner, max(1, lookahead)

    def run(self, chunks: Iterable[list[ArchivedFetch]], archive: RawArchive,
            sources: dict[str, Source]) -> Iterator[Extracted]:  # fmt: skip
        pending: deque[tuple[int, list[ArchivedFetch], Any]] = deque()
        try:
            for number, chunk in enumerate(chunks):
                parameters = {"pages": read_pages(chunk, archive), "sources": sources_of(chunk, sources),
                              "batch_no": number}  # fmt: skip
                pending.append((number, chunk, self.runner.submit(extract_batch, parameters)))
                if len(pending) >= self.lookahead:
                    yield self._collect(*pending.popleft())
            while pending:
                yield self._collect(*pending.popleft())
        finally:
            for _, _, future in pending:  # a run that stops early: nothing more to extract
                future.wrapped_future.cancel()

    @staticmethod
    def _collect(number: int, chunk: list[ArchivedFetch], future: Any) -> Extracted:
        try:
            done: Timed[list[PageRecord]] = future.result()
        except Exception as exc:
            raise ExtractFailed(
                f"extract batch {number} ({len(chunk)} page(s), from {chunk[0].url}) failed on the Dask cluster: "
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}; pages "
                "loaded before it are kept, the rest stay in the raw archive and the next run loads them") from None
        return Extracted(number, chunk, done.value, done.seconds, done.notes)


@contextmanager
def extractor(extract_on: ExtractOn) -> Iterator[Extractor]:
    """The Extractor for `extract_on`, its cluster started (or connected to) for the block and
    closed after it, quietly (distributed's shutdown chatter is noise: `_quiet_shutdown`)."""
    if extract_on.in_process:
        yield InProcess()
        return
    from prefect_dask import DaskTaskRunner  # imported only by runs that use Dask: a second of start-up

    if extract_on.address:
        runner = DaskTaskRunner(address=extract_on.address)
    else:
        runner = DaskTaskRunner(cluster_kwargs=_local_cluster_kwargs(extract_on.workers))
    import dask

    # A LocalCluster's workers log their start and stop at INFO, some 40 lines a run, and
    # silence_logs quiets only this process: they read this before distributed's import.
    quiet_workers = {"distributed.nanny.pre-spawn-environ.DASK_LOGGING__DISTRIBUTED": "warning"}
    with _quiet_shutdown(), dask.config.set(quiet_workers), runner:
        try:
            client = runner.client  # starts the LocalCluster, or connects
        except OSError as exc:  # distributed: "Timed out trying to connect to tcp://… after 30 s"
            raise ExtractFailed(f"cannot reach {extract_on.describe()}: {exc}; nothing was extracted: the pages "
                                "stay in the raw archive and the next run loads them") from None
        workers = _prepare_workers(client, local=not extract_on.address)
        _say(logging.INFO, "extract batches run on %s: %d worker(s)", extract_on.describe(), len(workers))
        try:
            yield OnDask(runner, LOOKAHEAD_PER_WORKER * max(1, len(workers)))
        finally:
            interrupt.forget_workers(set(workers.values()))


def _say(level: int, message: str, *args: object) -> None:
    """To the flow run's log (the command line shows it, and Prefect's UI) when in a flow run;
    to this module's logger otherwise."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        get_run_logger().log(level, message, *args)
    except MissingContextError:
        log.log(level, message, *args)


def extract_on_from(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ExtractOn:
    """Where the parsed arguments say to extract, or the parser's one-line error (exit 2): a
    count from GOVETL_DASK_WORKERS beside --dask-address (or GOVETL_DASK_ADDRESS beside
    --dask-workers) passes the mutually exclusive group, which sees only what is typed."""
    try:
        return ExtractOn(args.dask_workers, args.dask_address)
    except ClusterConfigError as exc:
        parser.error(str(exc))


def _local_cluster_kwargs(workers: int) -> dict[str, Any]:
    """A LocalCluster of `workers` single-threaded worker processes (the extractor holds
    the GIL), no dashboard, told where the flow's Prefect API is."""
    api_url = PREFECT_API_URL.value() or interrupt.owned_api_url()
    return {"n_workers": workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None,
            "silence_logs": logging.ERROR, "env": {"PREFECT_API_URL": api_url} if api_url else {}}  # fmt: skip


def _prepare_workers(client: Any, local: bool) -> dict[str, int]:
    """Give every worker (and any that joins later) the extractor's build and, on a
    LocalCluster, the SIGINT policy; return the workers' addresses and process ids (a
    LocalCluster's, adopted by flows/interrupt.py)."""
    from flows.worker_plugins import ExtractorBuild, IgnoreInterrupts, QuietHeartbeat  # imports distributed: Dask runs only

    if local:
        client.register_plugin(IgnoreInterrupts())
        client.register_plugin(QuietHeartbeat())
    build = ExtractorBuild.of_this_process()
    if build is not None:
        client.register_plugin(build)
    pids: dict[str, int] = client.run(_process_id)
    if local:
        interrupt.adopt_workers(set(pids.values()))
    return pids


def _process_id() -> int:
    import os

    return os.getpid()


def report_extractors(notes: Iterable[str]) -> None:
    """Log where the batches were extracted and with which extractor; warn of the workers
    that ran it interpreted while this process has a build (a fifth slower, same results)."""
    seen = sorted(set(notes))
    if not seen:
        return
    _say(logging.INFO, "extracted by: %s", "; ".join(seen))
    here = extractor_note().rsplit(": ", 1)[1]
    slower = [note for note in seen if note.endswith("interpreted extractor")]
    if slower and here == "compiled extractor":
        _say(logging.WARNING, "%d worker(s) ran the interpreted extractor (same results, about a fifth slower): "
             "their installed sources differ from this process's build: %s", len(slower), "; ".join(slower))  # fmt: skip


@contextmanager
def _quiet_shutdown() -> Iterator[None]:
    """distributed's loggers say at length that connections close while a cluster stops, and
    warn of a worker restarted after dying; the first is noise, the second information
    (kept). Raised to ERROR for the block, and after it until the interpreter exits, when
    its finalizers speak last."""
    noisy = ("prefect.task_runner.dask", "distributed", "distributed.nanny", "distributed.core", "distributed.comm", "distributed.batched",
             "distributed.client", "distributed.scheduler", "distributed.worker", "distributed.process",
             "distributed.deploy", "distributed.utils_perf", "tornado")  # fmt: skip
    for name in noisy:
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="distributed")
        yield
