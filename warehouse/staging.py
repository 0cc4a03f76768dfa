"""Stage Python records as Arrow tables registered on a connection.

Values reach DuckDB only as Arrow columns, never as SQL text: titles and bodies with
quotes, SQL, markup, control characters or 10 MB paragraphs are stored verbatim, and a
batch is inserted set-based by `insert ... select` from the staged table.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any, Union, get_args, get_origin, get_type_hints

import duckdb
import pyarrow as pa

# large_string: a batch of 10 MB bodies may exceed the 2 GB offsets of plain string.
_ARROW_TYPES: dict[type, pa.DataType] = {
    str: pa.large_string(),
    bool: pa.bool_(),
    int: pa.int64(),
    float: pa.float64(),
    datetime: pa.timestamp("us"),
    date: pa.date32(),
}


def arrow_fields(cls: type, exclude: Sequence[str] = ()) -> dict[str, pa.DataType]:
    """Column name → Arrow type for the scalar fields of a dataclass (e.g. tasks.records)."""
    hints = get_type_hints(cls)
    return {f.name: _arrow_type(hints[f.name]) for f in dataclasses.fields(cls)
            if f.name not in exclude}


def _arrow_type(annotation: Any) -> pa.DataType:
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    if annotation not in _ARROW_TYPES:
        raise TypeError(f"no Arrow column type for {annotation!r}")
    return _ARROW_TYPES[annotation]


# DuckDB column types → the Arrow type we stage them as (DuckDB casts on insert).
_FROM_DUCKDB: dict[str, pa.DataType] = {
    "VARCHAR": pa.large_string(), "JSON": pa.large_string(), "BOOLEAN": pa.bool_(),
    "INTEGER": pa.int64(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(),
    "TIMESTAMP": pa.timestamp("us"), "DATE": pa.date32(),
}


def table_fields(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, pa.DataType]:
    """Column name → Arrow type of a warehouse table, read from its DDL (the one place)."""
    rows = con.execute(
        "select column_name, data_type from duckdb_columns() "
        "where schema_name = 'main' and table_name = ? order by column_index", [table]).fetchall()
    if not rows:
        raise ValueError(f"no table {table!r} in the warehouse")
    return {name: _FROM_DUCKDB[typ] for name, typ in rows}


def to_arrow(rows: Sequence[Mapping[str, Any]], fields: Mapping[str, pa.DataType]) -> pa.Table:
    """Rows (dicts) to an Arrow table with exactly `fields`; missing keys become NULL."""
    columns = {}
    for name, typ in fields.items():
        values = [row.get(name) for row in rows]
        if pa.types.is_timestamp(typ):  # only timestamps need converting; skip the rest (speed)
            values = [_cell(value) for value in values]
        columns[name] = pa.array(values, type=typ)
    return pa.table(columns)


def _cell(value: Any) -> Any:
    # Every TIMESTAMP column holds naive UTC.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def utc_naive(moment: datetime) -> datetime:
    """A datetime as naive UTC (naive input is taken to be UTC already)."""
    return _cell(moment)


def utc_now() -> datetime:
    """Now, as naive UTC: the convention of every TIMESTAMP column."""
    return datetime.now(UTC).replace(tzinfo=None)


@contextmanager
def staged(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> Iterator[None]:
    """Register Arrow tables under the given names for the duration of the block."""
    try:
        for name, table in tables.items():
            con.register(name, table)
        yield
    finally:
        for name in tables:
            con.unregister(name)
