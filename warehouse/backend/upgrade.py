"""Carry a warehouse written by DuckDB 2.0 over to the DuckDB this project runs (1.5.5).

    python -m warehouse.backend.upgrade data/warehouse.duckdb [--duckdb-dir DIR]
    python -m warehouse.backend.upgrade --check data/warehouse.snapshot.duckdb   (exit 1 and one line if it must be)

The project moved from DuckDB 2.0 back to the release line that the DuckDB CLI and the
extension wheels exist for (pyproject.toml says why), and a DuckDB cannot open a file
written by a newer release. So the file is exported by the DuckDB that wrote it and imported
by this one, nothing lost:

1. Under the run lock (no nightly run meanwhile), the DuckDB named in the file's header
   (2.0.0) is installed on demand with `pip install --target build/duckdb-<version>` (the
   package registry must answer, once) and, in a child process of its own, checkpoints the
   file (so nothing is left in its WAL) and exports every table to Parquet, with row counts,
   the sequences' last values and the migration ledger.
2. This DuckDB builds a new file beside it: the project's migrations that the ledger lists
   (the schema the rows were written under), then every table's rows, the ledger's
   own history included (applied_at as it was), sequences moved past their last values.
   Row counts are compared table by table; then the remaining migrations, views and seeds
   are applied as on any connection.
3. The old file is kept, hard-linked, as <file>.v<version>.bak; the new one is renamed
   over it (atomic: the path always names a whole warehouse), and the analysts' snapshot,
   if there is one, is published again from it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from tasks import settings
from tasks.crawl.runlock import RunLockedError, run_lock
from warehouse.backend.connect import STORAGE_VERSION, open_file, snapshot, snapshot_path, storage_header
from warehouse.backend.errors import WarehouseError, WarehouseFormatError
from warehouse.backend.tx import sql_identifier, sql_literal
from warehouse.schema.migrate import list_migrations, migrate

log = logging.getLogger(__name__)

DUCKDB_DIR = settings.PROJECT_ROOT / "build"  # where build/duckdb-<version>/ is installed
# The DuckDB that wrote this project's warehouses before the move, when a header names none.
WRITTEN_BY_DEFAULT = "2.0.0"


class UpgradeError(WarehouseError):
    """The warehouse could not be carried over; it is left as it was."""


@dataclass
class Upgrade:
    """What a conversion did, for its report."""

    path: Path
    written_by: str
    rows: dict[str, int] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    backup: Path | None = None
    snapshot: Path | None = None


def needs_upgrade(path: Path) -> bool:
    """Whether this DuckDB refuses the file as written by a newer one."""
    try:
        open_file(path, read_only=True).close()
    except WarehouseFormatError:
        return True
    return False


def upgrade(path: str | os.PathLike, duckdb_dir: Path = DUCKDB_DIR) -> Upgrade | None:
    """Convert the warehouse at `path` in place (module doc); None if it needs no converting."""
    path = Path(path)
    if not path.exists():
        raise UpgradeError(f"no warehouse at {path}")
    with run_lock(path):
        if not needs_upgrade(path):
            return None
        header = storage_header(path)
        written_by = header[1] if header and header[1].startswith("2.") else WRITTEN_BY_DEFAULT
        old_duckdb = install_duckdb(written_by, duckdb_dir)
        work = path.with_name(f".{path.name}.upgrade-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            manifest = export_tables(old_duckdb, path, work)
            _check_ledger(manifest["migrations"], path)
            done = Upgrade(path, written_by)
            new_file = work / "warehouse.duckdb"
            done.rows, done.applied = import_tables(new_file, manifest)
            done.backup = _swap(path, new_file, written_by)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if snapshot_path(path).exists():  # a copy of the old file: DuckDB 1.5.5 cannot read it either
        done.snapshot = snapshot(path)
    return done


# --- 1. the DuckDB that wrote the file ------------------------------------------------------
def install_duckdb(version: str, root: Path = DUCKDB_DIR) -> Path:
    """A directory holding the `duckdb` package of `version` (pip install --target, once)."""
    target = root / f"duckdb-{version}"
    if (target / "duckdb" / "__init__.py").exists():
        return target
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--retries", "2", "--timeout", "60", "--target", str(partial), f"duckdb=={version}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        reason = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UpgradeError(f"could not install DuckDB {version} with pip, which reading the old file needs "
                           f"(it must reach the package registry once): {reason}")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    return target


# Runs in a child process under the old DuckDB (python -S: nothing of this venv on its path).
_EXPORT_SCRIPT = r"""
import json, sys
import duckdb
path, out = sys.argv[1], sys.argv[2]
con = duckdb.connect(path)
con.execute("checkpoint")
def q(name):
    return '"' + name.replace('"', '""') + '"'
def literal(text):
    return "'" + text.replace("'", "''") + "'"
db = con.execute("select current_database()").fetchone()[0]
tables = [t for (t,) in con.execute(
    "select table_name from duckdb_tables() where database_name = ? and schema_name = 'main' "
    "and not temporary order by table_name", [db]).fetchall()]
manifest = {"duckdb": duckdb.__version__, "tables": {}, "sequences": [], "migrations": []}
for i, table in enumerate(tables):
    file = f"{out}/{i:04d}.parquet"
    (rows,) = con.execute(f"copy (select * from {q(table)}) to {literal(file)} (format parquet)").fetchone()
    manifest["tables"][table] = {"file": file, "rows": rows}
for name, start, step, low, high, cycle, last in con.execute(
        "select sequence_name, start_value, increment_by, min_value, max_value, cycle, last_value "
        "from duckdb_sequences() where database_name = ? and schema_name = 'main'", [db]).fetchall():
    manifest["sequences"].append({"name": name, "start": start, "increment": step, "min": low,
                                  "max": high, "cycle": cycle, "last": last})
if "schema_migrations" in tables:
    manifest["migrations"] = con.execute(
        "select version, name, sha256 from schema_migrations order by version").fetchall()
con.close()
print(json.dumps(manifest))
"""


def export_tables(duckdb_dir: Path, path: Path, out: Path) -> dict[str, Any]:
    """Every table of `path` as Parquet under `out`, written by the DuckDB in `duckdb_dir`."""
    env = {**os.environ, "PYTHONPATH": str(duckdb_dir)}
    done = subprocess.run([sys.executable, "-S", "-c", _EXPORT_SCRIPT, str(path), str(out)],
                          capture_output=True, text=True, env=env, timeout=3600)  # fmt: skip
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UpgradeError(f"exporting {path} with the DuckDB in {duckdb_dir} failed: {reason}")
    manifest: dict[str, Any] = json.loads(done.stdout)
    log.info("exported %d tables of %s with DuckDB %s", len(manifest["tables"]), path, manifest["duckdb"])
    return manifest


def _check_ledger(recorded: list[list[Any]], path: Path) -> None:
    """Refuse a warehouse whose applied migrations this code does not have, byte for byte."""
    if not recorded:
        raise UpgradeError(f"{path} has no migration ledger (schema_migrations): not a warehouse of this project")
    on_disk = {m.version: m for m in list_migrations()}
    for version, name, sha in recorded:
        m = on_disk.get(version)
        if m is None or m.sha256 != sha:
            raise UpgradeError(f"{path} has migration {name} applied, which this code "
                               f"{'lacks' if m is None else 'has in another version'}: upgrade the code first")


# --- 2. the new file ----------------------------------------------------------------------
def import_tables(new_file: Path, manifest: dict[str, Any]) -> tuple[dict[str, int], list[str]]:
    """Build `new_file` from the export; return the rows per table (verified) and what the
    final migration applied."""
    con = open_file(new_file, read_only=False, config={
        "storage_compatibility_version": STORAGE_VERSION, "preserve_insertion_order": True})
    try:
        migrate(con, only={version for version, _, _ in manifest["migrations"]})
        con.execute("delete from schema_migrations")  # the warehouse's own history replaces it
        for table, export in _carried(manifest).items():
            _import_table(con, table, export["file"])
        for sequence in manifest["sequences"]:
            _move_sequence(con, sequence)
        rows = _verified_counts(con, manifest)
        applied = migrate(con)  # what came after: migrations, views, seeds, data steps
        con.execute("checkpoint")
    finally:
        con.close()
    return rows, applied


def _carried(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The exported tables whose rows are carried over: all but the record of applied views
    and seeds, which are no rows of the warehouse (recorded as applied, they would not be
    created in the new file; the final migrate applies them afresh)."""
    return {table: export for table, export in manifest["tables"].items() if table != "schema_repeatables"}


def _import_table(con: duckdb.DuckDBPyConnection, table: str, file: str) -> None:
    exists = con.execute(f"select count(*) from duckdb_tables() where schema_name = 'main' "
                         f"and table_name = {sql_literal(table)}").fetchone()  # fmt: skip
    source = f"read_parquet({sql_literal(file)})"
    if exists and exists[0]:
        con.execute(f"insert into {sql_identifier(table)} by name select * from {source}")
    else:  # a table no migration creates: kept, with its rows and columns (no keys, comments)
        log.warning("table %s is not the project's; imported as it was exported", table)
        con.execute(f"create table {sql_identifier(table)} as select * from {source}")


def _move_sequence(con: duckdb.DuckDBPyConnection, seq: dict[str, Any]) -> None:
    """Recreate a sequence so that its next value follows the last one it gave out."""
    if seq["last"] is None:
        return
    cycle = "cycle" if seq["cycle"] else "no cycle"
    con.execute(f"create or replace sequence {sql_identifier(seq['name'])} increment by {int(seq['increment'])} "
                f"minvalue {int(seq['min'])} maxvalue {int(seq['max'])} "
                f"start with {int(seq['last']) + int(seq['increment'])} {cycle}")


def _verified_counts(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any]) -> dict[str, int]:
    rows: dict[str, int] = {}
    for table, export in _carried(manifest).items():
        (count,) = con.execute(f"select count(*) from {sql_identifier(table)}").fetchone() or (None,)
        if count != export["rows"]:
            raise UpgradeError(f"table {table}: {export['rows']} rows exported, {count} imported")
        rows[table] = count
    return rows


# --- 3. the swap --------------------------------------------------------------------------
def _swap(path: Path, new_file: Path, written_by: str) -> Path:
    """Keep the old file as a backup (a hard link) and rename the new one over it."""
    wal = path.with_name(path.name + ".wal")
    if wal.exists():  # the export checkpointed it away; a WAL now is another writer's
        raise UpgradeError(f"{wal} appeared while converting: another process writes {path}")
    backup = path.with_name(f"{path.name}.v{written_by}.bak")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.v{written_by}.{n}.bak")
    os.link(path, backup)
    target_dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        with new_file.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(new_file, path)
        os.fsync(target_dir_fd)
    finally:
        os.close(target_dir_fd)
    return backup


def report(done: Upgrade) -> str:
    rows = ", ".join(f"{table} {n}" for table, n in done.rows.items())
    lines = [f"{done.path}: carried over from DuckDB {done.written_by}'s storage format to DuckDB "
             f"{duckdb.__version__}'s ({STORAGE_VERSION}); row counts equal in all {len(done.rows)} tables: {rows}"]
    if done.applied:
        lines.append(f"then applied: {', '.join(done.applied)}")
    lines.append(f"the old file is kept as {done.backup}")
    if done.snapshot:
        lines.append(f"the analysts' snapshot {done.snapshot} was published again")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warehouse.backend.upgrade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("warehouse", type=Path, nargs="?", default=settings.WAREHOUSE_PATH,
                        help="DuckDB file to convert (default: %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="only say whether the file needs converting (exit status 1 if it does)")
    parser.add_argument("--duckdb-dir", type=Path, default=DUCKDB_DIR,
                        help="where the old DuckDB is installed, in duckdb-<version>/ (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.check:
            if args.warehouse.exists():
                open_file(args.warehouse, read_only=True).close()
            return 0
        done = upgrade(args.warehouse, args.duckdb_dir)
    except (WarehouseError, RunLockedError) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(report(done) if done else f"{args.warehouse} is already in a format DuckDB {duckdb.__version__} reads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
