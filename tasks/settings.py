"""Documented defaults for the whole pipeline, in one place.

Each constant states its unit. Precedence, highest first: flow parameters
(CLI flags or `prefect.yaml`), per-source values in `sources.yaml`, environment
variables named `GOVETL_<NAME>`, then the values below.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"GOVETL_{name}", default)


# --- where things live ---------------------------------------------------
SOURCES_FILE = Path(_env("SOURCES_FILE", str(PROJECT_ROOT / "sources.yaml")))
WAREHOUSE_PATH = Path(_env("WAREHOUSE_PATH", str(PROJECT_ROOT / "data" / "warehouse.duckdb")))
# The warehouse a run loads: a DuckDB file (WAREHOUSE_PATH, the default) or a DuckLake whose
# catalog is a PostgreSQL database, written `ducklake:postgres:<libpq key=value DSN>`, e.g.
# `ducklake:postgres:host=db.internal port=5432 user=govetl dbname=govetl_lake`
# (warehouse/backend/lake.py).
# A password belongs in ~/.pgpass or PGPASSWORD rather than here: it would show in `runs.parameters`.
WAREHOUSE = _env("WAREHOUSE", str(WAREHOUSE_PATH))
# Where a new lake keeps its Parquet files: a directory, or object storage (s3://bucket/prefix/,
# which needs the httpfs extension). Read when the lake is created; the catalog remembers it, so
# later runs and analysts need not set it (a different value then is refused, not silently used).
LAKE_DATA_PATH = _env("LAKE_DATA_PATH", "")
LAKE_DEFAULT_DATA_PATH = PROJECT_ROOT / "data" / "lake"  # for a new lake when LAKE_DATA_PATH is unset
# Snapshots of a lake older than this are expired after a run that wrote (time travel reaches back
# this far; their files are deleted once no snapshot needs them).
LAKE_SNAPSHOT_RETENTION_DAYS = float(_env("LAKE_SNAPSHOT_RETENTION_DAYS", "30"))
# A lake's small files are compacted after a run once a table has this many data and delete files.
LAKE_COMPACT_AT_FILES = int(_env("LAKE_COMPACT_AT_FILES", "20"))
# Attempts of one write transaction that conflicts with another writer's commit (DuckLake's
# optimistic concurrency), with a growing, jittered pause between them.
LAKE_COMMIT_ATTEMPTS = int(_env("LAKE_COMMIT_ATTEMPTS", "12"))
LAKE_RETRY_PAUSE = float(_env("LAKE_RETRY_PAUSE", "0.2"))  # seconds before the 2nd attempt; doubles, at most 5 s
# The raw archive of the flows (tasks/crawl/archive/): a directory holding archive.sqlite, or
# postgres:<libpq connection string>; empty: archive/ beside the warehouse. --archive overrides it.
ARCHIVE = _env("ARCHIVE", "")
# Raw archive directory of RawArchive() opened with no location (scripts, a Python shell).
ARCHIVE_DIR = Path(_env("ARCHIVE_DIR", str(PROJECT_ROOT / "data" / "archive")))
# seconds a write waits for another writer (SQLite's busy timeout, PostgreSQL's lock_timeout)
# or for a free pooled connection
ARCHIVE_BUSY_TIMEOUT = float(_env("ARCHIVE_BUSY_TIMEOUT", "30"))
ARCHIVE_SCHEMA = _env("ARCHIVE_SCHEMA", "raw_archive")  # the PostgreSQL schema holding the archive
ARCHIVE_PG_CONNECTIONS = int(_env("ARCHIVE_PG_CONNECTIONS", "8"))  # connections per open archive, shared by threads
ARCHIVE_PG_CONNECT_TIMEOUT = float(_env("ARCHIVE_PG_CONNECT_TIMEOUT", "10"))  # seconds to reach PostgreSQL

# --- HTTP ------------------------------------------------------------------
USER_AGENT = _env(
    "USER_AGENT",
    "govetl/0.1 (+https://example.invalid/govetl; open-information research crawler)",
)
CONNECT_TIMEOUT = float(_env("CONNECT_TIMEOUT", "5"))  # seconds to establish a connection
READ_TIMEOUT = float(_env("READ_TIMEOUT", "15"))  # seconds between two received bytes
DOWNLOAD_DEADLINE = float(_env("DOWNLOAD_DEADLINE", "45"))  # seconds for one whole download
RETRY_TIMES = int(_env("RETRY_TIMES", "3"))  # retries after the first attempt (4 requests at most)
RETRY_HTTP_CODES = (429, 500, 502, 503, 504, 522, 524, 408)
RETRY_BACKOFF_FACTOR = float(_env("RETRY_BACKOFF_FACTOR", "0.5"))  # seconds; doubles per retry
RETRY_BACKOFF_MAX = float(_env("RETRY_BACKOFF_MAX", "30"))  # seconds, cap of one backoff sleep
RETRY_BACKOFF_JITTER = float(_env("RETRY_BACKOFF_JITTER", "0.5"))  # seconds, random extra per backoff
RETRY_AFTER_MAX = float(_env("RETRY_AFTER_MAX", "30"))  # seconds; a longer Retry-After gives up
MAX_RESPONSE_BYTES = int(_env("MAX_RESPONSE_BYTES", str(8 * 1024 * 1024)))  # decoded bytes
MAX_REDIRECTS = int(_env("MAX_REDIRECTS", "5"))
DEFAULT_RATE_LIMIT_PER_SECOND = float(_env("RATE_LIMIT_PER_SECOND", "1"))  # requests/s per host
OBEY_ROBOTS = _env("OBEY_ROBOTS", "1") == "1"
# If robots.txt cannot be fetched (network error or 5xx) the host is treated as allowed,
# and the failure is counted in the run summary (Scrapy's policy). 4xx means "no rules".
ROBOTS_UNREACHABLE_POLICY = "allow"
# A header or <meta> charset is overruled when decoding with it replaces more than this share
# of the non-ASCII characters (see tasks/crawl/encoding.py).
ENCODING_MAX_REPLACED_RATIO = 0.01  # fraction of non-ASCII characters (0.01 = 1 %)
FETCH_WORKERS = int(_env("FETCH_WORKERS", "8"))  # the flow's task-runner threads; a lone Fetcher's pooled connections

# --- the crawl: many hosts at once, bounded (tasks/crawl/scheduler.py) ----------
# Threads that make requests, and so the most requests in flight at once, whatever the
# number of hosts. A thousand hosts at 1 request/s each need about rate × latency of them
# (1,000/s × 20 ms = 20); more only help when responses are slow.
CRAWL_WORKERS = int(_env("CRAWL_WORKERS", "32"))
# Hosts whose idle keep-alive connection is kept for their next request, the least recently
# used closed first. Open connections stay under CRAWL_WORKERS + CRAWL_KEEP_ALIVE_HOSTS
# (a rate-limited host has one request in flight at a time: one connection).
CRAWL_KEEP_ALIVE_HOSTS = int(_env("CRAWL_KEEP_ALIVE_HOSTS", "128"))
# Requests in flight at once to one host whose rate limit is off (rate_limit_per_second 0:
# loopback benchmarks); a rate-limited host gets one at a time.
CRAWL_CONNECTIONS_PER_HOST = int(_env("CRAWL_CONNECTIONS_PER_HOST", "4"))
# Prefect task runs a crawl is shared out into (each a slice of the sources, all crawled at
# once on the one scheduler): a task run costs Prefect ~4 ms of this process's CPU, so one per
# source is seconds of orchestration at a thousand sources (BENCHMARKS.md).
CRAWL_TASKS = int(_env("CRAWL_TASKS", "8"))

# --- discovery -------------------------------------------------------------
# Listing pages read per source per run (pages left are read first by the next runs).
MAX_LISTING_PAGES = int(_env("MAX_LISTING_PAGES", "50"))
# Stop paginating after this many consecutive listing pages that hold no unknown link.
STOP_AFTER_KNOWN_PAGES = int(_env("STOP_AFTER_KNOWN_PAGES", "1"))
# A known page is re-checked (conditional GET) once its last check is older than this.
REVALIDATE_AFTER_HOURS = float(_env("REVALIDATE_AFTER_HOURS", str(24 * 7)))
# A link that answered 404 or 410 (gone) is not requested again before this many days
# (a per-source `gone_recheck_after_days` overrides it); other failures are retried next run.
GONE_RECHECK_AFTER_DAYS = float(_env("GONE_RECHECK_AFTER_DAYS", "30"))

# --- pipeline --------------------------------------------------------------
BATCH_SIZE = int(_env("BATCH_SIZE", "50"))  # pages per fetch and extract task
# A load transaction commits once its staged batches hold this many rows (reports, sections,
# metrics, ranks; about 200 a report), and at the end of the load: its fixed costs (the merge's
# statements over whole tables) are paid per transaction, not per batch (warehouse/writer/load.py).
# A transaction this large writes its full row groups straight into the file as it inserts
# them (warehouse/backend/connect.py), where one of 50,000 rows went to the WAL at commit and was
# written again by the checkpoint that followed: at 10,000 pages (1.95 M rows, load alone),
# 50,000 rows loaded 34,000 rows/s, 250,000 rows 64,000-69,000 rows/s in less memory.
LOAD_TRANSACTION_ROWS = int(_env("LOAD_TRANSACTION_ROWS", "250000"))
# ... and the warehouse file is checkpointed once this many rows were committed since the last
# checkpoint (and at the end of the load); DuckDB also checkpoints at a commit that leaves its
# WAL over 16MB (its checkpoint_threshold, kept: a larger one let committed rows fill the
# writer's budget until a commit ran out of memory and could not roll back, a fatal error).
LOAD_CHECKPOINT_ROWS = int(_env("LOAD_CHECKPOINT_ROWS", "200000"))
# Where extract batches run (flows/cluster.py): 0 workers and no address, in the flow's process;
# N workers, a Dask LocalCluster of N worker processes started for the run; an address
# (tcp://scheduler:8786), an existing Dask cluster. Fetching and loading stay in the flow's process.
DASK_WORKERS = int(_env("DASK_WORKERS", "0"))
DASK_ADDRESS = _env("DASK_ADDRESS", "") or None
# The printed run summary and its markdown artifact show every source up to this many; past it,
# the totals and only the sources with something to say (failures, warnings, gone links), this
# many at most (every source: the etl-run-summary table artifact and `run_sources`).
SUMMARY_SOURCES_SHOWN = int(_env("SUMMARY_SOURCES_SHOWN", "20"))
RUN_LOCK_TIMEOUT = float(_env("RUN_LOCK_TIMEOUT", "30"))  # seconds a second run waits, then exits
WAREHOUSE_LOCK_TIMEOUT = float(_env("WAREHOUSE_LOCK_TIMEOUT", "60"))  # seconds of retrying a locked DuckDB file
# DuckDB memory of the nightly writer (DuckDB size syntax); it spills to disk beyond it.
# DuckDB's own default is 80% of RAM, which it would fill with cache on a big load. It must
# hold one load transaction's merge (LOAD_TRANSACTION_ROWS; its staged rows spill): 96MB holds
# 250,000 rows, 80MB does not. One that does not fit fails, rolls back and is done again
# under the large budget, so a smaller budget costs memory rather than saving it. What needs
# the room is the transaction's text (report bodies, about 18 KB each, section texts, their
# search words, metric sentences), not its row count. With each body stored once (migration
# 0014), 64MB and 80MB still refuse a 250,000-row transaction (writing reports), and 64MB a
# 125,000-row one (load alone at 10,000 pages).
WAREHOUSE_MEMORY_LIMIT = _env("WAREHOUSE_MEMORY_LIMIT", "96MB")
# Rows per row group of the tables the writer appends to (DuckDB's default: 122,880). A load
# transaction writes each full row group to the file, compressed, as it inserts (connect.py);
# smaller ones get there sooner instead of waiting in memory for the commit's checkpoint.
# Load alone at 10,000 pages (one writer thread, allocator at 0 ms): 30,720 rows loaded
# 68,147 rows/s and made a 733 MB file, 122,880 rows 57,750 rows/s and 910 MB.
WAREHOUSE_ROW_GROUP_SIZE = int(_env("WAREHOUSE_ROW_GROUP_SIZE", "30720"))
# Threads of the file writer's DuckDB. The load's statements are many and short, and the
# flow's process extracts between them: one thread loaded faster than two here (load alone
# at 10,000 pages, 2 cores: 74,272 rows/s against 70,438) and held less memory.
WAREHOUSE_THREADS = int(_env("WAREHOUSE_THREADS", "1"))
# Staging copies a load transaction's batches into temporary tables as they come, under a
# budget of its own: what does not fit spills to the writer's temporary directory, and the
# merge reads it back under the writer's budget above. The staged rows (about 80 MB a
# transaction) then no longer sit in memory beside the extraction that produces them: load
# alone at 10,000 pages (these settings), RSS between batches 273 -> 224 MB; the peak, at the
# merge and its commit, stays (300 -> 299 MB). 24MB is too little to copy one batch's
# columns; a copy that needs more than this (a page's 10 MB paragraph) is made under the
# writer's budget.
WAREHOUSE_STAGING_MEMORY_LIMIT = _env("WAREHOUSE_STAGING_MEMORY_LIMIT", "32MB")
# The same for a lake's writer, which writes each table's rows of a transaction as Parquet:
# a column of them is one allocation (a 250,000-row transaction's metric sentences, 40 MB),
# and an UPDATE or MERGE reads whole rows back. 96MB and 160MB refused every transaction of a
# 10,000-page load (each then done again under the large budget); 256MB held them all
# (load alone: VmHWM 655 MB, of which 278 MB is the process with the lake attached).
LAKE_MEMORY_LIMIT = _env("LAKE_MEMORY_LIMIT", "256MB")
# A batch too big for that budget (a 10 MB paragraph) is loaded alone under this one.
WAREHOUSE_MEMORY_LIMIT_LARGE = _env("WAREHOUSE_MEMORY_LIMIT_LARGE", "1GB")


# --- warehouse targets ---------------------------------------------------------
LAKE_PREFIX = "ducklake:postgres:"


def lake_catalog(warehouse: str | os.PathLike) -> str | None:
    """The libpq DSN of the PostgreSQL catalog when `warehouse` names a DuckLake
    (`ducklake:postgres:<dsn>`), None when it is a DuckDB file. Refuses a `ducklake:` target
    of another kind, or a DSN in URI form (it would not survive being handled as a path)."""
    text = os.fspath(warehouse)
    if not text.startswith("ducklake:"):
        return None
    dsn = text.removeprefix(LAKE_PREFIX).strip()
    if not text.startswith(LAKE_PREFIX) or not dsn or "://" in dsn:
        raise ValueError(f"a lake is named ducklake:postgres:<libpq key=value DSN> "
                         f"(e.g. ducklake:postgres:host=127.0.0.1 port=5432 dbname=lake), not {redact_dsn(text)!r}")
    return dsn


def redact_dsn(text: str) -> str:
    """A DSN (or a text holding one) fit to print: its password replaced by ***."""
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text)
