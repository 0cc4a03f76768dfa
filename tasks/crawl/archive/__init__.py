"""The raw archive: every fetch outcome, every fetched body (compressed), and crawl state.

It is kept apart from the DuckDB warehouse on purpose: analysts' readers may hold the
DuckDB file while the crawler must write, and pages whose warehouse load failed must wait
for the next run (`unloaded`, `mark_loaded`). A reprocess flow rebuilds reports from
`latest_fetched` with no network.

Two backends run the same logic (store.py) and SQL (schema.py); dialect.py says where
they differ:
- a SQLite file, `archive/archive.sqlite` beside the warehouse: the single-machine
  default (sqlite.py);
- a schema of a PostgreSQL database every worker can reach, for runs on many machines
  or many runs at once: `--archive 'postgres:<libpq connection string>'` (postgres.py,
  imported only when such an archive is used: psycopg would hold ~9 MB of every run).
location.py reads the setting (`--archive`, prefect.yaml's `archive`, GOVETL_ARCHIVE).

Tables (schema version in SQLite's `PRAGMA user_version`, PostgreSQL's `archive_version`;
migrated on open):

- fetches: one row per fetch outcome, the fetch log. `body_sha256` points at `blobs`
  for FETCHED and NON_HTML; `loaded_run_id` stays NULL until the warehouse has
  committed the page. `fetch_id` is the time the row was written, in microseconds since
  the epoch (one more than the last id if the clock is behind it): ids grow with time
  in an archive and are never issued twice across archives, so an archive that replaces
  a damaged one, or one restored from a backup, cannot hand the warehouse's fetch_log an
  id it already holds (its key is fetch_id alone). Writers take turns (dialect.py), so
  ids also become visible in their order, whichever process wrote them.
- blobs: body bytes, zlib-compressed, one row per distinct SHA-256 (identical pages
  are stored once, whichever run or process fetched them). Only bodies of successful
  fetches are ever stored.
- pages: crawl state per requested URL, for discovery and conditional GET.
  `last_checked_at` moves when the server confirmed the page (FETCHED, NON_HTML,
  NOT_MODIFIED), `last_attempt_at` on every outcome, `last_fetched_at` when a body
  arrived; validators (etag, last_modified) come from the latest body.
- frontier: the crawl frontier, every link discovery found, with its state, so that no
  run loses what another left unfinished. Article links: pending (found, not yet
  fetched) → fetched (body archived) → loaded (the warehouse committed it); or failed
  (reason; retried next run), gone (404/410; re-checked after GONE_RECHECK_AFTER_DAYS),
  skipped (not HTML; robots.txt, re-checked next run). Listing pages: pending (queued by
  a walk that stopped before reading it: page budget, interruption) → read; or failed,
  gone, skipped (not needed: the pages before it held only known links). Links are
  recorded as each listing page is read, before anything is fetched.
- listing_walks: per source, how its last listing walk ended and when one last read the
  whole listing. Until a first walk of a source has finished, a walk reads its whole
  listing (up to the page budget): an archive from before the frontier may lack pages.

Each record is one transaction (`record_many`: one for a batch), so a kill -9 at any point
leaves the whole record or none of it. Timestamps are ISO 8601 text in UTC.

Failures: a damaged archive raises ArchiveDamagedError when it is opened (SQLite's
`PRAGMA quick_check`; a PostgreSQL schema missing tables), whose message names it and the
command that sets it aside (`python -m tasks.crawl.archive set-aside WHERE`; `check WHERE`
runs the check alone); a PostgreSQL that cannot be reached raises ArchiveUnavailableError,
naming it without its password. A write refused because the disk is full is remembered
(`disk_full`), so that the run can fail with that reason rather than count pages as
failed one by one.

This package imports nothing of Prefect, the warehouse or the flows (tests/test_layout.py).
"""

from tasks.crawl.archive.errors import (ArchiveDamagedError, ArchiveError, ArchiveSettingError,
                                       ArchiveUnavailableError)  # fmt: skip
from tasks.crawl.archive.location import ARCHIVE_FILENAME, ArchiveLocation, as_location, locate, shown_setting
from tasks.crawl.archive.postgres_location import PostgresArchive
from tasks.crawl.archive.store import (GONE_STATUSES, ArchivedFetch, ArchiveProgress, FrontierLink, PageState,
                                       RawArchive, archive_progress, check, is_gone, set_aside)  # fmt: skip

__all__ = [
    "ARCHIVE_FILENAME", "GONE_STATUSES", "ArchiveDamagedError", "ArchiveError", "ArchiveLocation", "ArchiveProgress",
    "ArchiveSettingError", "ArchiveUnavailableError", "ArchivedFetch", "FrontierLink", "PageState", "PostgresArchive", "RawArchive",
    "archive_progress", "as_location", "check", "is_gone", "locate", "set_aside", "shown_setting",
]  # fmt: skip
