"""Prefect flows: the nightly ETL and the archive reprocessing.

Process defaults for these offline, unattended runs (set a variable to override it):
- telemetry off, which also silences the temporary server's heartbeat tracebacks
  ("database is locked");
- DuckDB's allocator (its own jemalloc) hands memory the warehouse writer freed back to the
  system at once rather than keeping it for reuse: a load frees and takes tens of MB a
  statement, and memory kept even 5 ms sat in the run's peak (load alone at 10,000 pages,
  one writer thread: 5 ms 338 MB, 20 ms 333, at once 298). It costs speed, which the writer's one thread and
  smaller row groups (tasks/settings.py) make up: with them the nightly flow at 10,000 pages
  peaked at 394 MB against 425, its load 27.7 s against 35.3 (README, "Performance"). Read
  when DuckDB is first imported, so it is set here, before any flow module imports it;
- at most two glibc malloc arenas (MALLOC_ARENA_MAX=2): glibc gives each thread that
  allocates an arena of its own, up to eight per core, and keeps what the crawl's dozens of
  threads freed in them for the rest of the run (~9 MB at 10,000 pages).
"""

import ctypes
import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DUCKDB_JE_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """mallopt(M_ARENA_MAX): what MALLOC_ARENA_MAX does, for a process already started. An
    operator's MALLOC_ARENA_MAX is left to glibc; a libc other than glibc is left alone."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(-8, arenas)  # -8: M_ARENA_MAX in glibc's malloc.h


_limit_malloc_arenas()
