"""Documented defaults for the whole pipeline, in one place.

Each constant states its unit. Precedence, highest first: flow parameters
(CLI flags or `prefect.yaml`), per-source values in `sources.yaml`, environment
variables named `GOVETL_<NAME>`, then the values below.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"GOVETL_{name}", default)


# --- where things live ---------------------------------------------------
SOURCES_FILE = Path(_env("SOURCES_FILE", str(PROJECT_ROOT / "sources.yaml")))
WAREHOUSE_PATH = Path(_env("WAREHOUSE_PATH", str(PROJECT_ROOT / "data" / "warehouse.duckdb")))
# Raw archive directory (compressed page bytes + fetch log); defaults beside the warehouse.
ARCHIVE_DIR = Path(_env("ARCHIVE_DIR", str(PROJECT_ROOT / "data" / "archive")))
ARCHIVE_BUSY_TIMEOUT = float(_env("ARCHIVE_BUSY_TIMEOUT", "30"))  # seconds a write waits for another process

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
FETCH_WORKERS = int(_env("FETCH_WORKERS", "8"))  # threads running discovery and fetch batches (hosts stay rate-limited)

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
BATCH_SIZE = int(_env("BATCH_SIZE", "50"))  # pages per fetch/extract/load task
RUN_LOCK_TIMEOUT = float(_env("RUN_LOCK_TIMEOUT", "30"))  # seconds a second run waits, then exits
WAREHOUSE_LOCK_TIMEOUT = float(_env("WAREHOUSE_LOCK_TIMEOUT", "60"))  # seconds of retrying a locked DuckDB file
# DuckDB memory of the nightly writer (DuckDB size syntax); it spills to disk beyond it.
# DuckDB's own default is 80% of RAM, which it would fill with cache on a big load; a
# nightly run peaks near 480 MB at 10,000 pages (BENCHMARKS.md). DuckDB's checkpoint
# threshold stays at its default: a larger one keeps more un-checkpointed data in memory,
# and at 256MB a 64MB writer ran out of memory during a rollback (a fatal DuckDB error).
WAREHOUSE_MEMORY_LIMIT = _env("WAREHOUSE_MEMORY_LIMIT", "64MB")
# A batch too big for that budget (a 10 MB paragraph) is loaded alone under this one.
WAREHOUSE_MEMORY_LIMIT_LARGE = _env("WAREHOUSE_MEMORY_LIMIT_LARGE", "1GB")
