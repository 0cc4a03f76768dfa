"""Each warehouse table's write disposition and key, declared once (dlt-style hints).

The DDL in migrations/ enforces these keys as PRIMARY KEYs, except where `enforced` is
False: the big child tables, whose keys the loader keeps (it replaces a report's rows whole
and refuses a page listing one key twice) and the unique-key checks verify after every load
(migrations/0013: a PRIMARY KEY's index cost half the load's time); tests/test_warehouse.py
checks that both agree. The loader, the unique-key data-quality check and the export all read this
map, so a key is never restated in Python.

Dispositions, a closed vocabulary:
  merge             upsert on `key`: a new key is inserted, a known key updated in place
  insert_only       append rows whose `key` is not stored yet; stored rows never change
  replace_children  per report: delete all rows of the touched `index_no`, insert the new set
  seed              reloaded whole from warehouse/schema/seeds/<table>.csv when that file changes
Layers: `data` is what a page says (a re-run over unchanged pages writes nothing here),
`ops` records runs and loads, `search` is derived from sections, `meta` describes the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Disposition = Literal["merge", "insert_only", "replace_children", "seed"]
Layer = Literal["data", "ops", "search", "meta"]


@dataclass(frozen=True)
class TableSpec:
    name: str
    disposition: Disposition
    key: tuple[str, ...]
    layer: Layer
    enforced: bool = True  # key is a PRIMARY KEY in the DDL
    checked: bool = True  # the data-quality checks verify the key after each load


TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec("reports", "merge", ("index_no",), "data"),
        TableSpec("report_versions", "insert_only", ("index_no", "version"), "data"),
        TableSpec("report_urls", "merge", ("index_no", "url"), "data"),
        TableSpec("report_conflicts", "merge", ("index_no", "url"), "data"),
        TableSpec("sections", "replace_children", ("index_no", "section_id"), "data", enforced=False),
        TableSpec("metrics", "replace_children", ("index_no", "ordinal"), "data", enforced=False),
        TableSpec("ranks", "replace_children", ("index_no", "ordinal"), "data", enforced=False),
        TableSpec("rejects", "insert_only", ("url", "raw_sha256"), "data"),
        TableSpec("search_sections", "replace_children", ("index_no", "section_id"), "search", enforced=False),
        TableSpec("runs", "merge", ("run_id",), "ops"),
        TableSpec("run_sources", "merge", ("run_id", "source"), "ops"),
        TableSpec("loads", "insert_only", ("load_id",), "ops"),
        TableSpec("fetch_log", "insert_only", ("fetch_id",), "ops"),
        TableSpec("dq_results", "merge", ("run_id", "check_name"), "ops"),
        TableSpec("unit_vocabulary", "seed", ("unit_norm",), "meta"),
        TableSpec("indicators", "seed", ("code",), "meta"),
        TableSpec("schema_migrations", "insert_only", ("version",), "meta"),
        TableSpec("schema_repeatables", "merge", ("name",), "meta"),
    )
}

# Children replaced per report, in the order the loader writes them.
REPORT_CHILDREN: tuple[str, ...] = ("sections", "metrics", "ranks")


def validate_tables(tables: dict[str, TableSpec] = TABLES) -> None:
    """Refuse a keyless table (dlt #1005/#971: an empty key silently replaced or duplicated)."""
    for spec in tables.values():
        if not spec.key or any(not col for col in spec.key):
            raise ValueError(f"table {spec.name!r} ({spec.disposition}) declares no key")


validate_tables()


def data_tables() -> list[str]:
    """Tables holding what pages say: a load over unchanged pages must leave them untouched."""
    return [t.name for t in TABLES.values() if t.layer in ("data", "search")]
