"""A damaged warehouse file: found when a run starts, healed by a rebuild from the raw archive.

`check_warehouse(path)` opens the file read-only (replaying its WAL, as DuckDB does), reads
its catalog and every table's row count, and compares the file's size with the blocks in
use its header declares (free blocks cut off the end at a checkpoint excepted): a truncated file opens and counts fine, and fails only the query that
reads a missing block, night after night. What DuckDB refuses (not a DuckDB file, a block
failing its checksum, a WAL that does not replay) or a file shorter than it says raises
`WarehouseDamaged`, one line naming the file and the command that rebuilds it. A file held
by a writer is not checked (the run waits for its lock); a file in a newer DuckDB's format
raises WarehouseFormatError as connect does.

`rebuild_warehouse` is the warehouse half of that command (`python -m flows.rebuild`,
which reads the archive and extracts): a new file beside the old one, loaded from the
pages it is given in fetch order, so that each page's successive contents become
successive versions, with every version dated by its fetch; then the fetch log, the checks
and a `runs` row of its own. The new file is checked like any, then swapped in with
os.replace (a reader holding the old file keeps it; nobody sees a half-built one); the
old file stays as `<name>.damaged-<UTC time>` (`.replaced-` when it was sound), a hard link
or else a copy, with its WAL beside it under the same name, so that the new file never
replays the old one's WAL.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from tasks.records import LoadOutcome, PageRecord
from warehouse.backend.connect import _LOCK_MESSAGE, connect, fsync_path, open_file
from warehouse.backend.errors import WarehouseDamaged
from warehouse.backend.lake import check_reachable, lake_of
from warehouse.backend.tx import one_row
from warehouse.quality.checks import run_checks
from warehouse.writer.load import count_outcomes, load_pages, record_fetch_log
from warehouse.writer.runs import finish_run, start_run

log = logging.getLogger(__name__)

# A DuckDB file: three 4 KiB headers, then `total_blocks` blocks of `block_size` bytes.
_HEADERS_BYTES = 3 * 4096
Loader = Callable[[duckdb.DuckDBPyConnection, str, list[PageRecord], datetime], list[LoadOutcome]]


def rebuild_command(path: str | os.PathLike, archive_dir: str | os.PathLike | None = None) -> str:
    """The command that rebuilds the warehouse at `path` (flows/rebuild.py)."""
    archive = f" --archive {archive_dir}" if archive_dir is not None else ""
    return f"python -m flows.rebuild --warehouse {path}{archive}"


def check_warehouse(path: str | os.PathLike, *, archive_dir: str | os.PathLike | None = None) -> None:
    """Raise WarehouseDamaged if the warehouse at `path` cannot be read (module doc); a file
    that is not there, or is held by a writer, passes (connect creates or waits for it). A
    lake's files are PostgreSQL's and the object store's to keep: its catalog must answer
    (LakeUnavailable, one line), and a lake is never rebuilt from the archive."""
    lake = lake_of(path)
    if lake is not None:
        check_reachable(lake)
        return
    path = Path(path)
    if not path.exists():
        return
    problem = _read_problem(path)
    if problem is not None:
        raise WarehouseDamaged(path, problem, rebuild_command(path, archive_dir))


def _read_problem(path: Path) -> str | None:
    """What makes the file unreadable, in a few words, or None."""
    try:
        con = open_file(path, read_only=True)
    except duckdb.Error as exc:
        if _LOCK_MESSAGE in str(exc):
            return None
        return _reason(path, exc)
    try:
        tables = [name for (name,) in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'main' and not temporary").fetchall()]
        for table in tables:
            con.execute(f'select count(*) from "{table}"').fetchone()
        _, _, block_size, _, used_blocks, *_ = one_row(con, "pragma database_size")
    except duckdb.Error as exc:
        return _reason(path, exc)
    finally:
        con.close()
    # Blocks in use, not total_blocks: DuckDB cuts free blocks off the end of the file at a
    # checkpoint and still counts them, so a sound file may be shorter than all its blocks.
    declared, size = _HEADERS_BYTES + int(used_blocks) * int(block_size), path.stat().st_size
    if size < declared:
        return f"truncated: {size:,} bytes, fewer than the {declared:,} its blocks in use take"
    return None


def _reason(path: Path, exc: duckdb.Error) -> str:
    """DuckDB's complaint on one line, without the path it repeats."""
    if isinstance(exc, duckdb.IOException) and "Permission denied" in str(exc):
        raise exc  # the file is fine, the process may not read it: no rebuild helps
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first.replace(f'"{path}"', "the file").replace(str(path), "the file")


def damage_of(exc: BaseException, path: str | os.PathLike,
              archive_dir: str | os.PathLike | None = None) -> WarehouseDamaged | None:
    """The WarehouseDamaged a DuckDB error raised mid-run means, if it says the file is damaged
    (a block that fails its checksum or cannot be read whole); else None."""
    text = str(exc)
    damaged = ("Corrupt database file", "Could not read enough bytes", "not a valid DuckDB database file",
               "Corrupt WAL file")  # fmt: skip
    if isinstance(exc, duckdb.Error) and any(phrase in text for phrase in damaged):
        return WarehouseDamaged(Path(path), _reason(Path(path), exc), rebuild_command(path, archive_dir))
    return None


# --- the rebuild ------------------------------------------------------------------------------
@dataclass
class RebuildResult:
    """What a rebuild wrote, and where the file it replaced went."""

    path: Path
    run_id: str
    backup: Path | None  # the old file, kept (None: there was none)
    was_damaged: bool
    pages: int = 0  # archived fetches replayed
    outcomes: Counter = field(default_factory=Counter)  # LoadOutcome statuses
    reports: int = 0
    current: int = 0  # of which not superseded
    versions: int = 0
    fetch_log: int = 0

    def describe(self) -> str:
        kept = (f"; the {'damaged' if self.was_damaged else 'old'} file is kept as {self.backup}"
                if self.backup else "")
        return (f"rebuilt {self.path} from the raw archive: {self.pages} archived fetch(es) replayed in fetch "
                f"order ({_counts(self.outcomes)}) → {self.reports} report(s), {self.current} current, "
                f"{self.versions} version(s); {self.fetch_log} fetch-log row(s); run {self.run_id}{kept}")


def _counts(counter: Counter) -> str:
    return ", ".join(f"{counter[k]} {k}" for k in ("new", "changed", "unchanged", "rejected") if counter[k])


def rebuild_warehouse(path: str | os.PathLike, batches: Iterable[Sequence[PageRecord]],
                      fetch_log: Callable[[], Iterable[Mapping[str, Any]]], *, run_id: str,
                      parameters: Mapping[str, Any] | None = None, load: Loader = load_pages,
                      now: datetime | None = None) -> RebuildResult:
    """Build a new warehouse from `batches` (pages in fetch order; a URL at most once per
    batch, each batch dated by its latest fetch) and `fetch_log` (every archived fetch row),
    then swap it in for the file at `path`, keeping that one (module doc). `load` is
    load_pages or a stand-in that isolates a page the warehouse refuses (tasks.steps)."""
    path = Path(path)
    stamp = f"{now or datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    was_damaged = _is_damaged(path)
    new = path.with_name(f".{path.name}.rebuild-{os.getpid()}.tmp")
    _remove(new)
    try:
        result = _build(new, batches, fetch_log, run_id, parameters or {}, load)
        check_warehouse(new)  # what is swapped in reads whole
        result.backup = swap_in(new, path, f"{'damaged' if was_damaged else 'replaced'}-{stamp}")
    finally:
        _remove(new)
    result.path, result.was_damaged = path, was_damaged
    log.info("%s", result.describe())
    return result


def _is_damaged(path: Path) -> bool:
    try:
        check_warehouse(path)
    except WarehouseDamaged:
        return True
    return False


def _build(new: Path, batches: Iterable[Sequence[PageRecord]], fetch_log: Callable[[], Iterable[Mapping[str, Any]]],
           run_id: str, parameters: Mapping[str, Any], load: Loader) -> RebuildResult:  # fmt: skip
    con = connect(new)
    try:
        start_run(con, run_id, parameters=dict(parameters) | {"mode": "rebuild"})
        result = RebuildResult(new, run_id, None, False)
        per_source: dict[str, Counter] = {}
        for batch in batches:
            pages = list(batch)
            if not pages:
                continue
            outcomes = load(con, run_id, pages, max(p.fetched_at for p in pages))
            result.pages += len(pages)
            result.outcomes.update(o.status for o in outcomes)
            for source, counts in count_outcomes(outcomes).items():
                per_source.setdefault(source, Counter()).update(counts)
        result.fetch_log = record_fetch_log(con, fetch_log())
        run_checks(con, run_id)
        result.reports, result.current, result.versions = one_row(con, """
            select count(*), count(*) filter (where superseded_by is null), (select count(*) from report_versions)
            from reports""")  # fmt: skip
        finish_run(con, run_id, status="completed", message=f"rebuilt from the raw archive ({result.pages} fetches)",
                   counts=_run_counts(result.outcomes, result.pages),
                   sources={s: _run_counts(c, sum(c.values())) for s, c in per_source.items()})  # fmt: skip
        con.execute("checkpoint")
    finally:
        con.close()
    return result


def _run_counts(outcomes: Counter, pages: int) -> dict[str, int]:
    return {"fetched": pages} | {k: outcomes[k] for k in ("new", "changed", "unchanged", "rejected")}


def swap_in(new: Path, path: Path, label: str) -> Path | None:
    """Put the file `new` at `path` in one rename; keep what was there as `<name>.<label>`
    (a hard link, else a copy), its WAL beside it as `<name>.<label>.wal`. Returns the kept
    file, or None when there was none."""
    backup = path.with_name(f"{path.name}.{label}") if path.exists() else None
    if backup is not None:
        try:
            os.link(path, backup)
        except OSError:  # a file system without hard links
            shutil.copy2(path, backup)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():  # never left beside the new file: DuckDB would replay it there
        wal.rename(path.with_name(f"{path.name}.{label}.wal"))
    os.replace(new, path)
    fsync_path(path.parent)
    return backup


def _remove(path: Path) -> None:
    for part in (path, path.with_name(path.name + ".wal")):
        part.unlink(missing_ok=True)


