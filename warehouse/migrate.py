"""Apply the schema: versioned migrations, then repeatable views and seeds.

Versioned files `migrations/NNNN_name.sql` run once each, in order, each in its own
transaction together with its row in `schema_migrations` (version, name, applied_at,
sha256). An applied file whose bytes changed, or that disappeared, stops everything:
the warehouse would no longer match the code (write a new migration instead).

Repeatable files are re-applied whenever their hash changes (Flyway's R__ idea):
`views/*.sql` (views and macros, `create or replace`) and `seeds/<table>.csv` (the
whole table reloaded; config/indicators.csv too, the extractor's indicator vocabulary).
They are recorded in `schema_repeatables`.

Some migrations need a data step that SQL cannot do (segmenting text: 0008). Its function,
in `BACKFILLS`, runs after the migrations and views, a batch per transaction, until it
finds nothing left to do: an interrupted one resumes at the next connection.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import duckdb

from warehouse.errors import MigrationError
from warehouse.search import fill_missing_words
from warehouse.staging import staged, staged_values, text_fields, to_arrow, utc_now
from warehouse.tx import transaction

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
VIEWS_DIR = PACKAGE_DIR / "views"
SEEDS_DIR = PACKAGE_DIR / "seeds"
# Seeds kept with the extractor's configuration, loaded as tables of the same name.
CONFIG_SEEDS = (PACKAGE_DIR.parent / "config" / "indicators.csv",)
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Data steps of migrations (module doc): version → a function returning how many reports it
# still had to do (0: nothing left).
BACKFILLS: dict[int, Callable[[duckdb.DuckDBPyConnection], int]] = {8: fill_missing_words}

# The ledger itself; comments on it are in 0004_comments.sql.
_LEDGER_DDL = """
create table if not exists schema_migrations (
    version    integer primary key,
    name       varchar not null,
    applied_at timestamp not null,
    sha256     varchar not null
);
create table if not exists schema_repeatables (
    name       varchar primary key,
    sha256     varchar not null,
    applied_at timestamp not null
);
"""


@dataclass(frozen=True)
class SqlFile:
    name: str  # file name (migrations) or path relative to the package (repeatables)
    path: Path
    sha256: str
    version: int | None = None


def migrate(con: duckdb.DuckDBPyConnection, *, only: Collection[int] | None = None) -> list[str]:
    """Bring the warehouse up to date; return the names of the files applied and of the data
    steps that did something (none: []). With `only`, just the migrations of those versions,
    and neither views, seeds nor data steps (warehouse.upgrade rebuilds the schema another
    warehouse's rows were written under, imports them, then migrates the rest)."""
    con.execute(_LEDGER_DDL)
    pending = _pending_migrations(con, list_migrations(MIGRATIONS_DIR))
    if only is not None:
        return [_apply_migration(con, m) for m in pending if m.version in only]
    applied = [_apply_migration(con, m) for m in pending]
    applied += _apply_repeatables(con)
    applied += _run_backfills(con)
    if applied:
        log.info("warehouse schema: applied %s", ", ".join(applied))
    return applied


def list_migrations(directory: Path = MIGRATIONS_DIR) -> list[SqlFile]:
    """The versioned migration files, in version order; refuses malformed names."""
    files = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_lowercase_name.sql")
        files.append(SqlFile(path.name, path, _sha256(path), int(match.group(1))))
    versions = [f.version for f in files]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a number in {directory}")
    return files


def _pending_migrations(con: duckdb.DuckDBPyConnection, files: list[SqlFile]) -> list[SqlFile]:
    """Files not applied yet, after checking the applied ones are unchanged and present."""
    recorded = {v: (n, h) for v, n, h in con.execute(
        "select version, name, sha256 from schema_migrations").fetchall()}
    on_disk = {f.version: f for f in files}
    for version, (name, sha) in sorted(recorded.items()):
        current = on_disk.get(version)
        if current is None:
            raise MigrationError(
                f"migration {name} is applied to this warehouse but missing from "
                f"{MIGRATIONS_DIR}: the code is older than the warehouse")
        if current.sha256 != sha:
            raise MigrationError(
                f"migration {current.name} changed after it was applied (sha256 {sha[:12]}… "
                f"applied, {current.sha256[:12]}… on disk): restore it and put the change "
                f"in a new migration")
    return [f for f in files if f.version not in recorded]


def _apply_migration(con: duckdb.DuckDBPyConnection, m: SqlFile) -> str:
    with transaction(con):
        con.execute(m.path.read_text(encoding="utf-8"))
        with staged_values(con, version=m.version, name=m.name, applied_at=utc_now(), sha256=m.sha256):
            con.execute("insert into schema_migrations by name select * from args")
    return m.name


def _list_repeatables() -> list[SqlFile]:
    paths = sorted(VIEWS_DIR.glob("*.sql")) + sorted(SEEDS_DIR.glob("*.csv")) + list(CONFIG_SEEDS)
    return [SqlFile(f"{p.parent.name}/{p.name}", p, _sha256(p)) for p in paths]


def _apply_repeatables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Re-apply all views and seeds, in order, if any of them changed.

    All of them, because a view may select from another: replacing one alone could leave
    a dependant bound to columns that no longer exist.
    """
    files = _list_repeatables()
    recorded = dict(con.execute("select name, sha256 from schema_repeatables").fetchall())
    if all(recorded.get(f.name) == f.sha256 for f in files):
        return []
    with transaction(con):
        for f in files:
            if f.path.suffix == ".csv":
                _apply_seed(con, f.path)
            else:
                con.execute(f.path.read_text(encoding="utf-8"))
            with staged_values(con, name=f.name, sha256=f.sha256, applied_at=utc_now()):
                con.execute("insert or replace into schema_repeatables by name select * from args")
    return [f.name for f in files if recorded.get(f.name) != f.sha256]


def _run_backfills(con: duckdb.DuckDBPyConnection) -> list[str]:
    versions = {v for (v,) in con.execute("select version from schema_migrations").fetchall()}
    done = []
    for version, step in BACKFILLS.items():
        if version in versions and (reports := step(con)):
            done.append(f"{step.__name__} ({reports} reports)")
    return done


def _apply_seed(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Replace table <stem> with the CSV's rows (read as text; the insert casts)."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = to_arrow(list(reader), text_fields(reader.fieldnames or []))
    with staged(con, {"_seed_rows": rows}):
        con.execute(f'delete from "{path.stem}"')
        con.execute(f'insert into "{path.stem}" by name select * from _seed_rows')


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
