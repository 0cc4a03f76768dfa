"""Stage Python records as Arrow arrays registered on a connection.

Values reach DuckDB only as Arrow columns, never as SQL text: titles and bodies with
quotes, SQL, markup, control characters or 10 MB paragraphs are stored verbatim, and a
batch is inserted set-based by `insert ... select` from the staged table.

The columns are built with nanoarrow (Apache Arrow's small C library for producing and
exchanging arrays) and DuckDB scans them through the Arrow C stream interface. pyarrow
would stage them as well, but the writer needs nothing else of it, and its first array
imports pandas too (pyarrow checks every input for a DataFrame): the two held about 80 MB
of the nightly run's peak memory and 0.4 s of its start-up.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from typing import Any, Union, get_args, get_origin, get_type_hints

import duckdb
import nanoarrow as na

# large_string: a batch of 10 MB bodies may exceed the 2 GB offsets of plain string.
_ARROW_TYPES: dict[type, na.Schema] = {
    str: na.large_string(),
    bool: na.bool_(),
    int: na.int64(),
    float: na.float64(),
    datetime: na.timestamp("us"),
    date: na.date32(),
}


def arrow_fields(cls: type, exclude: Sequence[str] = ()) -> dict[str, na.Schema]:
    """Column name → Arrow type for the scalar fields of a dataclass (e.g. tasks.records)."""
    hints = get_type_hints(cls)
    return {f.name: _arrow_type(hints[f.name]) for f in dataclasses.fields(cls)
            if f.name not in exclude}


def _arrow_type(annotation: Any) -> na.Schema:
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    if annotation not in _ARROW_TYPES:
        raise TypeError(f"no Arrow column type for {annotation!r}")
    return _ARROW_TYPES[annotation]


# DuckDB column types → the Arrow type we stage them as (DuckDB casts on insert).
_FROM_DUCKDB: dict[str, na.Schema] = {
    "VARCHAR": na.large_string(), "JSON": na.large_string(), "BOOLEAN": na.bool_(),
    "INTEGER": na.int64(), "BIGINT": na.int64(), "DOUBLE": na.float64(),
    "TIMESTAMP": na.timestamp("us"), "DATE": na.date32(),
}


def table_fields(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, na.Schema]:
    """Column name → Arrow type of a warehouse table, read from its DDL (the one place)."""
    rows = con.execute(
        "select column_name, data_type from duckdb_columns() "
        "where schema_name = 'main' and table_name = ? order by column_index", [table]).fetchall()
    if not rows:
        raise ValueError(f"no table {table!r} in the warehouse")
    return {name: _FROM_DUCKDB[typ] for name, typ in rows}


def text_fields(names: Sequence[str]) -> dict[str, na.Schema]:
    """Every column as text (CSV rows: the insert casts)."""
    return dict.fromkeys(names, na.large_string())


def to_arrow(rows: Sequence[Mapping[str, Any]], fields: Mapping[str, na.Schema]) -> na.Array:
    """Rows (dicts) to one Arrow struct array (a record batch) with exactly `fields`;
    missing keys become NULL. A value of the wrong type raises (a float in an int64
    column too: nothing is truncated on the way)."""
    columns = []
    for name, typ in fields.items():
        values = [row.get(name) for row in rows]
        to_storage = _STORAGE.get(typ.type)
        if to_storage is not None:  # only dates and times need converting; skip the rest (speed)
            values = [None if value is None else to_storage(value) for value in values]
        columns.append(na.c_array(values, typ))
    schema = na.struct(dict(fields))
    return na.Array(na.c_array_from_buffers(schema, len(rows), [None], children=columns))


_EPOCH = datetime(1970, 1, 1)
_EPOCH_DAY = _EPOCH.toordinal()
_MICROSECOND = timedelta(microseconds=1)


def _microseconds(value: datetime) -> int:
    # Every TIMESTAMP column holds naive UTC.
    return (utc_naive(value) - _EPOCH) // _MICROSECOND


def _days(value: date) -> int:
    return value.toordinal() - _EPOCH_DAY


# What Arrow stores for a timestamp("us") or date32 value.
_STORAGE: dict[na.Type, Callable[[Any], int]] = {na.Type.TIMESTAMP: _microseconds, na.Type.DATE32: _days}


def utc_naive(moment: datetime) -> datetime:
    """A datetime as naive UTC (naive input is taken to be UTC already)."""
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def utc_now() -> datetime:
    """Now, as naive UTC: the convention of every TIMESTAMP column."""
    return datetime.now(UTC).replace(tzinfo=None)


@contextmanager
def staged(con: duckdb.DuckDBPyConnection, tables: Mapping[str, na.Array]) -> Iterator[None]:
    """Register Arrow arrays under the given names for the duration of the block.

    A registration made inside a transaction is undone by its rollback, and after a failed
    statement DuckDB 2 refuses even the unregister: on the error path a refusal is left to
    the rollback rather than raised over the error that caused it.
    """
    registered: list[str] = []
    try:
        for name, table in tables.items():
            con.register(name, table)
            registered.append(name)
        yield
    except BaseException:
        for name in registered:
            with suppress(duckdb.TransactionException):
                con.unregister(name)
        raise
    for name in registered:
        con.unregister(name)
