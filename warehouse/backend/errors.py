"""Exceptions of the warehouse, named for what went wrong.

`transient` says whether retrying later can succeed (dlt's TransientException idea):
the flow decides on the class, never on message text.
"""

from __future__ import annotations

from pathlib import Path


class WarehouseError(Exception):
    """Base class of every error raised by `warehouse`."""

    transient = False


class WarehouseLockedError(WarehouseError, TimeoutError):
    """Another process holds the DuckDB file lock and did not release it in time."""

    transient = True

    def __init__(self, path: Path, waited_s: float, read_only: bool, holder_pid: int | None,
                 holder: str | None) -> None:
        self.path, self.waited_s, self.holder_pid = path, waited_s, holder_pid
        who = f"process PID {holder_pid} ({holder})" if holder_pid else "another process"
        wanted = "read-only" if read_only else "read-write"
        super().__init__(
            f"DuckDB file {path} is locked by {who}; gave up opening it {wanted} after "
            f"waiting {waited_s:.1f} s. A DuckDB file admits one read-write process OR several "
            f"read-only ones, never both. Close that process's connection (often a notebook; "
            f"analysts should open {path.stem}.snapshot.duckdb instead), then retry. "
            f"GOVETL_WAREHOUSE_LOCK_TIMEOUT sets how long to wait."
        )


class WarehouseFormatError(WarehouseError):
    """The file is in a DuckDB storage format that this DuckDB cannot open: written by a
    newer release (DuckDB 2.0 wrote this project's warehouses before it moved to 1.5.5)."""

    def __init__(self, path: Path, written_by: str | None, reader: str, warehouse: Path | None = None) -> None:
        self.path, self.written_by = path, written_by
        by = f"DuckDB {written_by}" if written_by else "a newer DuckDB"
        what = "it" if warehouse in (None, path) else f"the warehouse it is a snapshot of"
        super().__init__(
            f"{path} is in the storage format of {by}, which DuckDB {reader} cannot open: convert {what} "
            f"once with `python -m warehouse.backend.upgrade {warehouse or path}` (it keeps a backup)")


class MigrationError(WarehouseError):
    """The migration files and the warehouse's migration ledger disagree."""


class WarehouseKeyError(WarehouseError, ValueError):
    """Rows offered for a keyed table lack their key: refused before any write."""


class WarehouseDamaged(WarehouseError):
    """The warehouse file cannot be read: not a DuckDB file, a block failing its checksum, a
    truncated file, a WAL that does not replay. The one-line message names the file and the
    command that rebuilds it from the raw archive (warehouse/backend/rebuild.py)."""

    def __init__(self, path: Path, detail: str, command: str) -> None:
        self.path, self.detail, self.command = path, detail, command
        super().__init__(
            f"the warehouse {path} is damaged ({detail}): rebuild it from the raw archive, with its "
            f"version history, by `{command}` (the damaged file is kept beside it)")
