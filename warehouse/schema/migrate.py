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

A DuckLake (warehouse/backend/lake.py) has no PRIMARY KEY, UNIQUE or CHECK constraints, indexes or
sequences, and the same migrations make its schema, read through a *reference*: the
migrations applied to an empty in-memory DuckDB. A new lake gets the reference's tables
(columns, types, NOT NULL, defaults, comments) without those constraints, and every
migration recorded as applied. A lake migrated before a later migration existed gets it
statement by statement: a CREATE TABLE with constraints becomes the reference's table
without them, a CREATE SEQUENCE or INDEX is skipped, anything else runs as written. Keys are
the loader's to keep and the checks' to verify (tables.py).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import duckdb

from warehouse.backend.errors import MigrationError
from warehouse.backend.lake import CLAIMS_DDL, is_lake_connection, retrying
from warehouse.backend.staging import staged, staged_values, text_fields, to_arrow, utc_now
from warehouse.backend.tx import one_row, sql_literal, transaction
from warehouse.writer.search import fill_missing_words

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
VIEWS_DIR = PACKAGE_DIR / "views"
SEEDS_DIR = PACKAGE_DIR / "seeds"
# Seeds kept with the extractor's configuration, loaded as tables of the same name.
CONFIG_SEEDS = (PACKAGE_DIR.parents[1] / "config" / "indicators.csv",)
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
    and neither views, seeds nor data steps (warehouse.backend.upgrade rebuilds the schema another
    warehouse's rows were written under, imports them, then migrates the rest)."""
    lake = is_lake_connection(con)
    if lake:
        applied = retrying(con, lambda: _start_lake(con, only), what="creating the lake's schema")
    else:
        con.execute(_LEDGER_DDL)
        applied = []
    pending = _pending_migrations(con, list_migrations(MIGRATIONS_DIR))
    if only is not None:
        pending = [m for m in pending if m.version in only]
    apply = partial(_apply_lake_migration, con) if lake else partial(_apply_migration, con)
    applied += [retrying(con, partial(apply, m), what=f"migration {m.name}") for m in pending]
    if only is not None:
        return applied
    applied += retrying(con, lambda: _apply_repeatables(con), what="views and seeds")
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
        _record_migration(con, m)
    return m.name


def _record_migration(con: duckdb.DuckDBPyConnection, m: SqlFile) -> None:
    with staged_values(con, version=m.version, name=m.name, applied_at=utc_now(), sha256=m.sha256):
        con.execute("insert into schema_migrations by name select * from args")


# --- a lake's schema (module doc) -----------------------------------------------------------
def reference(versions: Collection[int] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the ledger and the migrations (those of `versions`, else
    all) applied: the schema as the migrations write it, constraints and all."""
    ref = duckdb.connect(":memory:")
    ref.execute(_LEDGER_DDL)
    for m in list_migrations(MIGRATIONS_DIR):
        if versions is None or m.version in versions:
            ref.execute(m.path.read_text(encoding="utf-8"))
    return ref


def _start_lake(con: duckdb.DuckDBPyConnection, only: Collection[int] | None) -> list[str]:
    """A lake with no schema yet gets the reference's (`only` those migrations), recorded as
    applied, in one transaction; a lake with one is left for its pending migrations. Either way
    the lake's own bookkeeping (warehouse/backend/lake.py: claims) is there afterwards."""
    (exists,) = one_row(con, "select count(*) from duckdb_tables() where database_name = current_database() "
                             "and schema_name = 'main' and table_name = 'schema_migrations'")  # fmt: skip
    if exists:
        return []
    files = [m for m in list_migrations(MIGRATIONS_DIR) if only is None or m.version in only]
    ref = reference({m.version for m in files if m.version is not None})
    try:
        _refuse_what_a_lake_lacks(ref)
        with transaction(con):
            con.execute(CLAIMS_DDL)
            for table in _tables(ref):
                con.execute(lake_table_ddl(ref, table, comments=True))
            for m in files:
                _record_migration(con, m)
    finally:
        ref.close()
    log.info("lake schema created from migrations %s", ", ".join(m.name for m in files))
    return [m.name for m in files]


def _apply_lake_migration(con: duckdb.DuckDBPyConnection, m: SqlFile) -> str:
    """Apply migration `m` to a lake that has every migration before it (module doc)."""
    applied = {v for (v,) in con.execute("select version from schema_migrations").fetchall()}
    ref = reference(applied)
    try:
        with transaction(con):
            for statement in ref.extract_statements(m.path.read_text(encoding="utf-8")):
                before = _catalog(ref)
                ref.execute(statement.query)
                # What a CREATE made (a table renamed by an ALTER is a new name too, and runs as written).
                created = _catalog(ref) - before if statement.type == duckdb.StatementType.CREATE else set()
                constrained = [name for kind, name in created if kind == "table" and _constraints(ref, name)]
                if constrained:
                    for table in constrained:
                        con.execute(lake_table_ddl(ref, table, comments=False))
                elif any(kind in ("sequence", "index") for kind, _ in created):
                    log.info("%s: skipped on the lake, which has no sequences or indexes: %s",
                             m.name, " ".join(statement.query.split())[:120])  # fmt: skip
                else:
                    try:
                        con.execute(statement.query)
                    except duckdb.Error as exc:
                        raise MigrationError(f"migration {m.name} cannot be applied to a lake: "
                                             f"{' '.join(statement.query.split())[:160]} → {str(exc).splitlines()[0]}") from exc
            _record_migration(con, m)
    finally:
        ref.close()
    return m.name


def lake_table_ddl(ref: duckdb.DuckDBPyConnection, table: str, *, comments: bool) -> str:
    """CREATE TABLE for a lake: the reference table's columns, types, NOT NULL and defaults,
    without its keys and CHECK constraints; then its comments if asked."""
    columns = ref.execute("select column_name, data_type, is_nullable, column_default, comment from duckdb_columns() "
                          "where schema_name = 'main' and table_name = ? order by column_index", [table]).fetchall()
    body = ",\n    ".join(f'"{name}" {kind}' + ("" if nullable else " not null")
                          + (f" default {default}" if default is not None else "")
                          for name, kind, nullable, default, _ in columns)  # fmt: skip
    ddl = [f'create table "{table}" (\n    {body}\n)']
    if comments:
        (table_comment,) = one_row(ref, "select comment from duckdb_tables() where schema_name = 'main' "
                                        "and table_name = ?", [table])  # fmt: skip
        if table_comment:
            ddl.append(f'comment on table "{table}" is {sql_literal(table_comment)}')
        ddl += [f'comment on column "{table}"."{name}" is {sql_literal(comment)}'
                for name, _, _, _, comment in columns if comment]
    return ";\n".join(ddl) + ";"


def _tables(ref: duckdb.DuckDBPyConnection) -> list[str]:
    return [name for (name,) in ref.execute(
        "select table_name from duckdb_tables() where schema_name = 'main' order by table_oid").fetchall()]


def _catalog(ref: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    """(kind, name) of every table, sequence and index of the reference."""
    return set(ref.execute("""
        select 'table', table_name from duckdb_tables() where schema_name = 'main'
        union all select 'sequence', sequence_name from duckdb_sequences() where schema_name = 'main'
        union all select 'index', index_name from duckdb_indexes() where schema_name = 'main'""").fetchall())


def _constraints(ref: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The key and CHECK constraints of a reference table (what a lake cannot hold)."""
    return [kind for (kind,) in ref.execute(
        "select constraint_type from duckdb_constraints() where schema_name = 'main' and table_name = ? "
        "and constraint_type in ('PRIMARY KEY', 'UNIQUE', 'CHECK', 'FOREIGN KEY')", [table]).fetchall()]


def _refuse_what_a_lake_lacks(ref: duckdb.DuckDBPyConnection) -> None:
    """Macros and views belong in views/ (re-applied on both backends); a migration that leaves
    one behind could not be carried to a lake's schema from the catalog."""
    left = ref.execute("select function_name from duckdb_functions() where schema_name = 'main' and not internal "
                       "and function_type in ('macro', 'table_macro') union all "
                       "select view_name from duckdb_views() where schema_name = 'main' and not internal").fetchall()
    if left:
        raise MigrationError(f"the migrations leave macros or views ({', '.join(n for (n,) in left)}): "
                             "define them in warehouse/schema/views/ so that a lake gets them too")


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
    lake = is_lake_connection(con)
    with transaction(con):
        for f in files:
            if f.path.suffix == ".csv":
                _apply_seed(con, f.path)
            elif lake:
                _apply_views_to_lake(con, f.path.read_text(encoding="utf-8"))
            else:
                con.execute(f.path.read_text(encoding="utf-8"))
            with staged_values(con, name=f.name, sha256=f.sha256, applied_at=utc_now()):
                con.execute("merge into schema_repeatables as r using args as a on r.name = a.name "
                            "when matched then update set sha256 = a.sha256, applied_at = a.applied_at "
                            "when not matched then insert by name")
    return [f.name for f in files if recorded.get(f.name) != f.sha256]


# A COMMENT ON COLUMN or ON MACRO statement (after the comment lines before it).
_LAKE_REFUSES = re.compile(r"^(?:\s*--[^\n]*\n)*\s*comment\s+on\s+(column|macro)\b", re.IGNORECASE)


def _apply_views_to_lake(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """A views/ file on a lake, which keeps no comments on a view's columns nor on macros
    (DuckLake 1.5.5 refuses them): those statements are left out; `view_column_comments`
    reads the columns' from the reference instead."""
    for statement in con.extract_statements(sql):
        if not _LAKE_REFUSES.match(statement.query):
            con.execute(statement.query)


@lru_cache(maxsize=1)
def view_column_comments() -> dict[tuple[str, str], str]:
    """(view, column) → comment, as views/ writes them: from the reference with the views
    applied (a lake holds none of them; the export's workbook shows them as header notes)."""
    ref = reference()
    try:
        for path in sorted(VIEWS_DIR.glob("*.sql")):
            ref.execute(path.read_text(encoding="utf-8"))
        rows = ref.execute("select c.table_name, c.column_name, c.comment from duckdb_columns() as c "
                           "join duckdb_views() as v on v.view_name = c.table_name and v.schema_name = c.schema_name "
                           "where c.comment is not null").fetchall()
    finally:
        ref.close()
    return {(view, column): comment for view, column, comment in rows}


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
