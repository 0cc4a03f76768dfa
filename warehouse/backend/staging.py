"""Stage Python records as Arrow arrays registered on a connection.

Values reach DuckDB only as Arrow columns, never as SQL text: titles and bodies with
quotes, SQL, markup, control characters or 10 MB paragraphs are stored verbatim, and a
batch is inserted set-based by `insert ... select` from the staged table.

The columns are built with nanoarrow (Apache Arrow's small C library for producing and
exchanging arrays) and DuckDB scans them through the Arrow C stream interface. pyarrow
would stage them as well, but the writer needs nothing else of it, and its first array
imports pandas too (pyarrow checks every input for a DataFrame): the two held about 80 MB
of the nightly run's peak memory and 0.4 s of its start-up.

DuckDB 1.5's Python API imports pandas (and with it pyarrow) the first time it is handed
any Python object to inspect: a DataFrame-like object to `register`, or a `?` parameter
to bind. Only a bare Arrow C stream capsule is taken as it is. So `staged` registers each
array's stream capsule and copies it into a temporary table at once (a stream can be
scanned only once; the loader reads its staged tables several times), and the writer's
statements take their few scalar values from a staged one-row table (`staged_values`)
instead of `?` parameters. A test runs a writer's whole round and checks that neither
module was imported.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, Union, get_args, get_origin, get_type_hints

import duckdb
import nanoarrow as na
from nanoarrow.c_array_stream import CArrayStream

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
    rows = [(name, typ) for owner, name, typ, _ in main_columns(con) if owner == table]
    if not rows:
        raise ValueError(f"no table {table!r} in the warehouse")
    return {name: _FROM_DUCKDB[typ] for name, typ in rows}


def main_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, bool]]:
    """(table, column, type, nullable) of every column of the main schema, in column order.

    All of them, filtered by the caller: a `?` parameter would import pandas (module doc)."""
    return con.execute(
        "select table_name, column_name, data_type, is_nullable from duckdb_columns() "
        "where schema_name = 'main' order by table_name, column_index").fetchall()


def text_fields(names: Sequence[str]) -> dict[str, na.Schema]:
    """Every column as text (CSV rows: the insert casts)."""
    return dict.fromkeys(names, na.large_string())


def to_arrow(rows: Sequence[Mapping[str, Any]], fields: Mapping[str, na.Schema]) -> na.Array:
    """Rows (dicts) to one Arrow struct array (a record batch) with exactly `fields`;
    missing keys become NULL. A value of the wrong type raises (a float in an int64
    column too: nothing is truncated on the way)."""
    return columns_to_arrow({name: [row.get(name) for row in rows] for name in fields}, fields, len(rows))


def columns_to_arrow(columns: Mapping[str, Sequence[Any]], fields: Mapping[str, na.Schema],
                     length: int | None = None) -> na.Array:  # fmt: skip
    """Columns (name → values, all of one length) to one Arrow struct array with exactly
    `fields`; a field with no column is all NULL. Built column by column, the loader's
    rows never become a dict each. Types are checked as in `to_arrow`."""
    if length is None:
        length = len(next(iter(columns.values()), ()))
    arrays = []
    for name, typ in fields.items():
        values = columns.get(name)
        if values is None:
            values = [None] * length
        elif len(values) != length:
            raise ValueError(f"column {name!r} has {len(values)} values, not {length}")
        to_storage = _STORAGE.get(typ.type)
        if to_storage is not None:  # only dates and times need converting; skip the rest (speed)
            values = [None if value is None else to_storage(value) for value in values]
        arrays.append(na.c_array(values, typ))
    schema = na.struct(dict(fields))
    return na.Array(na.c_array_from_buffers(schema, length, [None], children=arrays))


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


class Chunks:
    """Arrow arrays of one schema, read as one table: batches of a load transaction held
    until they are copied into its staged tables together (warehouse.writer.load.StagedPages).
    Each `__arrow_c_stream__` is a new stream over the same arrays."""

    def __init__(self, schema: na.Schema) -> None:
        self.schema = schema
        self.arrays: list[na.Array] = []

    def append(self, array: na.Array) -> None:
        self.arrays.append(array)

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        stream = CArrayStream.from_c_arrays([na.c_array(array) for array in self.arrays], na.c_schema(self.schema))
        return stream.__arrow_c_stream__()


class Streamable(Protocol):
    """What `staged` copies: an Arrow array, `Chunks`, anything read as an Arrow C stream."""

    def __arrow_c_stream__(self, requested_schema: object = None) -> object: ...


@contextmanager
def staged(con: duckdb.DuckDBPyConnection, tables: Mapping[str, Streamable]) -> Iterator[None]:
    """Make Arrow arrays readable as temporary tables of the given names for the block.

    A table created inside a transaction is undone by its rollback, and after a failed
    statement DuckDB refuses even the drop: on the error path a refusal is left to the
    rollback rather than raised over the error that caused it. The copies count against
    DuckDB's memory budget (the registered arrays did not): a batch of 50 pages stages a
    few MB.
    """
    created: list[str] = []
    try:
        for name, table in tables.items():
            _copy_stream(con, name, table)
            created.append(name)
        yield
    except BaseException:
        for name in created:
            with suppress(duckdb.TransactionException):
                con.execute(f'drop table if exists temp."{name}"')
        raise
    for name in created:
        con.execute(f'drop table temp."{name}"')


def _copy_stream(con: duckdb.DuckDBPyConnection, name: str, table: Streamable, *, create: bool = True) -> None:
    """temp.<name> := the rows of `table` (or, with create=False, those rows appended to
    it), read once through its Arrow C stream capsule."""
    stream = f"_stream_{name}"
    con.register(stream, table.__arrow_c_stream__())
    try:
        if create:
            con.execute(f'create or replace temp table "{name}" as select * from "{stream}"')
        else:
            # fetched: DuckDB 2.0 runs an INSERT's result lazily, and refuses the next statement
            # while it is not complete (python -m warehouse.backend.upgrade loads under 2.0)
            con.execute(f'insert into temp."{name}" select * from "{stream}"').fetchall()
    finally:
        with suppress(duckdb.TransactionException):
            con.unregister(stream)


def append_staged(con: duckdb.DuckDBPyConnection, name: str, table: Streamable, *, create: bool) -> None:
    """Stage `table` as the temporary table `name` (create=True), or append its rows to it:
    a load transaction's batches are staged one after the other (warehouse.writer.load.StagedPages).
    The caller drops the table (`drop_staged`)."""
    _copy_stream(con, name, table, create=create)


def drop_staged(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> None:
    """Drop staged tables; one a failed transaction's rollback already undid is no error."""
    for name in names:
        with suppress(duckdb.TransactionException):
            con.execute(f'drop table if exists temp."{name}"')


def staged_values(con: duckdb.DuckDBPyConnection, /, **values: Any) -> AbstractContextManager[None]:
    """Stage scalar values as the one-row table `args` for the block, the writer's stand-in
    for `?` parameters (module doc): `insert into loads by name select * from args`,
    `update runs set ... from args as a where runs.run_id = a.run_id`. Types follow the
    values (None: a NULL text, which DuckDB casts to the column's type)."""
    fields = {key: _ARROW_TYPES[type(value)] if value is not None else na.large_string()
              for key, value in values.items()}
    return staged(con, {"args": to_arrow([values], fields)})
