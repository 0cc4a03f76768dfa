"""The raw archive: every fetch outcome, every fetched body (compressed), and crawl state.

It is a SQLite file beside the DuckDB warehouse, not inside it, on purpose: analysts'
readers may hold the DuckDB file while the crawler must write, and pages whose
warehouse load failed must wait for the next run (`unloaded`, `mark_loaded`). A
reprocess flow rebuilds reports from `latest_fetched` with no network.

Tables (schema version in `PRAGMA user_version`, migrated on open):

- fetches: one row per fetch outcome, the fetch log. `body_sha256` points at `blobs`
  for FETCHED and NON_HTML; `loaded_run_id` stays NULL until the warehouse has
  committed the page. `fetch_id` is the time the row was written, in microseconds since
  the epoch (one more than the last id if the clock is behind it): ids grow with time
  in an archive and are never issued twice across archives, so an archive that replaces
  a damaged one, or one restored from a backup, cannot hand the warehouse's fetch_log an
  id it already holds (its key is fetch_id alone).
- blobs: body bytes, zlib-compressed, one row per distinct SHA-256 (identical pages
  are stored once). Only bodies of successful fetches are ever stored.
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

Each record is one transaction in WAL mode, so a kill -9 at any point leaves the whole
record or none of it. Timestamps are ISO 8601 text in UTC.

Damage: opening an archive runs SQLite's `PRAGMA quick_check`; a damaged file raises
ArchiveDamagedError, whose message names the file and the command that sets it aside
(`python -m tasks.crawl.archive set-aside FILE`; `check FILE` runs the check alone).
A write refused because the disk is full is remembered (`disk_full`), so that the run
can fail with that reason rather than count pages as failed one by one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tasks import settings
from tasks.crawl.discover import Discovery, ListingPage
from tasks.records import FetchOutcome, FetchResult

ARCHIVE_FILENAME = "archive.sqlite"
_BODY_OUTCOMES = frozenset({FetchOutcome.FETCHED, FetchOutcome.NON_HTML})
_CONFIRMED_OUTCOMES = _BODY_OUTCOMES | {FetchOutcome.NOT_MODIFIED}
GONE_STATUSES = frozenset({404, 410})  # the server says the page is gone: re-checked on a back-off
_IN_CHUNK = 500  # ids or URLs per "IN (...)" query, well under SQLite's variable limit

# _MIGRATIONS[n] moves the schema from version n to n + 1; append, never edit.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,  -- bytes before compression
            body BLOB NOT NULL      -- zlib
        )""",
        """CREATE TABLE fetches (
            fetch_id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            source TEXT NOT NULL,
            url TEXT NOT NULL,
            final_url TEXT,
            outcome TEXT NOT NULL,
            status INTEGER,
            reason TEXT,
            content_type TEXT,
            headers_json TEXT NOT NULL,
            fetched_at TEXT NOT NULL,
            elapsed_s REAL NOT NULL,
            attempts INTEGER NOT NULL,
            retry_reasons_json TEXT NOT NULL,
            etag TEXT,
            last_modified TEXT,
            sha256 TEXT,
            size INTEGER,
            body_sha256 TEXT REFERENCES blobs (sha256),
            loaded_run_id TEXT
        )""",
        "CREATE INDEX fetches_by_run ON fetches (run_id)",
        "CREATE INDEX fetches_by_url ON fetches (url, outcome, fetch_id)",
        """CREATE INDEX fetches_unloaded ON fetches (fetch_id)
            WHERE outcome = 'fetched' AND loaded_run_id IS NULL""",
        """CREATE TABLE pages (
            url TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            first_seen_at TEXT NOT NULL,
            last_attempt_at TEXT NOT NULL,
            last_checked_at TEXT,
            last_fetched_at TEXT,
            etag TEXT,
            last_modified TEXT,
            last_sha256 TEXT,
            last_outcome TEXT NOT NULL
        )""",
        "CREATE INDEX pages_by_source ON pages (source, last_checked_at)",
    ),
    (
        """CREATE TABLE frontier (
            url TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            kind TEXT NOT NULL,           -- article | listing
            state TEXT NOT NULL,          -- article: pending fetched loaded gone failed skipped;
                                          -- listing: pending read failed gone skipped
            reason TEXT,                  -- why failed, gone or skipped, as the fetch log says it
            failures INTEGER NOT NULL DEFAULT 0,  -- failed attempts in a row
            next_attempt_at TEXT,         -- failed, gone, skipped: not requested before then (NULL: never)
            first_seen_at TEXT NOT NULL,
            first_seen_run_id TEXT,
            updated_at TEXT NOT NULL,
            last_run_id TEXT,
            found_on TEXT,                -- article: the listing page it was found on
            title TEXT,
            listed_date TEXT,
            last_read_at TEXT,            -- listing: when it was last read
            links_found INTEGER,          -- listing: article links on it then
            declared_records INTEGER      -- listing: records it declared then
        )""",
        "CREATE INDEX frontier_by_source ON frontier (source, kind, state)",
        """CREATE TABLE listing_walks (
            source TEXT PRIMARY KEY,
            last_run_id TEXT NOT NULL,
            last_walk_at TEXT NOT NULL,
            complete INTEGER NOT NULL,    -- 1: that walk left no listing page unread or failed
            stop_reason TEXT NOT NULL,
            last_complete_at TEXT         -- the last walk that read the whole listing
        )""",
        # Pages archived before the frontier existed: known links, fetched or loaded.
        """INSERT INTO frontier (url, source, kind, state, reason, first_seen_at, updated_at)
           SELECT p.url, p.source, 'article',
                  CASE WHEN NOT EXISTS (SELECT 1 FROM fetches f WHERE f.url = p.url AND f.outcome = 'fetched')
                       THEN 'skipped'
                       WHEN (SELECT f.loaded_run_id FROM fetches f WHERE f.url = p.url AND f.outcome = 'fetched'
                             ORDER BY f.fetch_id DESC LIMIT 1) IS NULL THEN 'fetched'
                       ELSE 'loaded' END,
                  CASE WHEN NOT EXISTS (SELECT 1 FROM fetches f WHERE f.url = p.url AND f.outcome = 'fetched')
                       THEN 'not HTML' END,
                  p.first_seen_at, p.last_attempt_at
           FROM pages AS p WHERE p.last_fetched_at IS NOT NULL""",
    ),
    (
        # Which runs loaded pages (checked against the warehouse's runs at every load).
        "CREATE INDEX IF NOT EXISTS fetches_by_loaded_run ON fetches (loaded_run_id) WHERE loaded_run_id IS NOT NULL",
    ),
)

_NEXT_FETCH_ID = "SELECT max(:now_us, coalesce(max(fetch_id), 0) + 1) FROM fetches"
_INSERT_FETCH = """
INSERT INTO fetches (fetch_id, run_id, source, url, final_url, outcome, status, reason, content_type,
    headers_json, fetched_at, elapsed_s, attempts, retry_reasons_json, etag, last_modified,
    sha256, size, body_sha256)
VALUES (:fetch_id, :run_id, :source, :url, :final_url, :outcome, :status, :reason, :content_type,
    :headers_json, :fetched_at, :elapsed_s, :attempts, :retry_reasons_json, :etag, :last_modified,
    :sha256, :size, :body_sha256)
"""
# A new body replaces the validators; a 304 keeps the old ones unless it sends new ones.
_UPSERT_PAGE = """
INSERT INTO pages (url, source, first_seen_at, last_attempt_at, last_checked_at, last_fetched_at,
    etag, last_modified, last_sha256, last_outcome)
VALUES (:url, :source, :fetched_at, :fetched_at, :checked_at, :body_at,
    :etag, :last_modified, :body_sha256, :outcome)
ON CONFLICT (url) DO UPDATE SET
    last_attempt_at = excluded.last_attempt_at,
    last_checked_at = coalesce(excluded.last_checked_at, last_checked_at),
    last_fetched_at = coalesce(excluded.last_fetched_at, last_fetched_at),
    etag = CASE WHEN excluded.last_fetched_at IS NOT NULL THEN excluded.etag
                WHEN excluded.last_checked_at IS NOT NULL THEN coalesce(excluded.etag, etag)
                ELSE etag END,
    last_modified = CASE WHEN excluded.last_fetched_at IS NOT NULL THEN excluded.last_modified
                WHEN excluded.last_checked_at IS NOT NULL THEN coalesce(excluded.last_modified, last_modified)
                ELSE last_modified END,
    last_sha256 = coalesce(excluded.last_sha256, last_sha256),
    last_outcome = excluded.last_outcome
"""
_FETCH_COLUMNS = ("fetch_id, run_id, source, url, final_url, outcome, status, content_type, "
                  "fetched_at, sha256, size, loaded_run_id")  # fmt: skip
# Only the newest FETCHED row of a URL counts: an older unloaded one is superseded and
# must not overwrite newer data in the warehouse.
_UNLOADED = f"""
SELECT {_FETCH_COLUMNS} FROM fetches AS f
WHERE f.outcome = 'fetched' AND f.loaded_run_id IS NULL AND (:source IS NULL OR f.source = :source)
  AND f.fetch_id = (SELECT max(fetch_id) FROM fetches WHERE url = f.url AND outcome = 'fetched')
ORDER BY f.fetch_id
"""
_LATEST_FETCHED = f"""
SELECT {_FETCH_COLUMNS} FROM fetches
WHERE fetch_id IN (SELECT max(fetch_id) FROM fetches WHERE outcome = 'fetched'
                   AND (:source IS NULL OR source = :source) GROUP BY url)
ORDER BY fetch_id
"""

# --- the frontier ---------------------------------------------------------------------
# A fetch moves an article link to the state its outcome means. A 304 keeps the link
# 'fetched' while its newest body waits for the warehouse, else makes it 'loaded'.
_UPDATE_ARTICLE = """
UPDATE frontier SET
    state = coalesce(:state, CASE WHEN (SELECT f.loaded_run_id IS NULL FROM fetches f
                                        WHERE f.url = :url AND f.outcome = 'fetched'
                                        ORDER BY f.fetch_id DESC LIMIT 1) THEN 'fetched' ELSE 'loaded' END),
    reason = :reason, next_attempt_at = :next_attempt_at,
    failures = CASE WHEN :failed THEN failures + 1 ELSE 0 END,
    updated_at = :at, last_run_id = :run_id
WHERE url = :url AND kind = 'article'
"""
_ADD_LINK = """
INSERT INTO frontier (url, source, kind, state, first_seen_at, first_seen_run_id, updated_at, last_run_id,
    found_on, title, listed_date)
VALUES (:url, :source, 'article', 'pending', :at, :run_id, :at, :run_id, :found_on, :title, :listed_date)
ON CONFLICT (url) DO NOTHING
"""
_LISTING_READ = """
INSERT INTO frontier (url, source, kind, state, first_seen_at, first_seen_run_id, updated_at, last_run_id,
    last_read_at, links_found, declared_records)
VALUES (:url, :source, 'listing', 'read', :at, :run_id, :at, :run_id, :at, :links_found, :declared_records)
ON CONFLICT (url) DO UPDATE SET
    state = 'read', reason = NULL, failures = 0, next_attempt_at = NULL, updated_at = :at,
    last_run_id = :run_id, last_read_at = :at, links_found = :links_found, declared_records = :declared_records
WHERE kind = 'listing'
"""
# A listing page a walk queued: pending until it is read (an interrupted walk leaves it so).
# A page this run already read stays read (page 2 links back to page 1 as 首页).
_LISTING_QUEUED = """
INSERT INTO frontier (url, source, kind, state, first_seen_at, first_seen_run_id, updated_at, last_run_id, found_on)
VALUES (:url, :source, 'listing', 'pending', :at, :run_id, :at, :run_id, :found_on)
ON CONFLICT (url) DO UPDATE SET state = 'pending', updated_at = :at, last_run_id = :run_id
WHERE kind = 'listing' AND (state = 'skipped' OR (state = 'read' AND last_run_id IS NOT :run_id))
"""
_LISTING_FAILED = """
INSERT INTO frontier (url, source, kind, state, reason, failures, next_attempt_at, first_seen_at,
    first_seen_run_id, updated_at, last_run_id)
VALUES (:url, :source, 'listing', :state, :reason, 1, :next_attempt_at, :at, :run_id, :at, :run_id)
ON CONFLICT (url) DO UPDATE SET state = :state, reason = :reason, failures = failures + 1,
    next_attempt_at = :next_attempt_at, updated_at = :at, last_run_id = :run_id
WHERE kind = 'listing'
"""
# A queued page the walk did not need (the pages before it held only known links).
_LISTING_NOT_NEEDED = """
UPDATE frontier SET state = CASE WHEN last_read_at IS NULL THEN 'skipped' ELSE 'read' END,
    reason = CASE WHEN last_read_at IS NULL THEN 'not read: the listing pages before it held only known links' END,
    updated_at = :at, last_run_id = :run_id
WHERE url = :url AND kind = 'listing' AND state = 'pending'
"""
_LISTING_LEFT = """
UPDATE frontier SET state = 'pending', reason = 'not read yet: the page budget (max_listing_pages) ran out',
    updated_at = :at, last_run_id = :run_id
WHERE url = :url AND kind = 'listing' AND state IN ('pending', 'read', 'skipped')
"""
_WALK_DONE = """
INSERT INTO listing_walks (source, last_run_id, last_walk_at, complete, stop_reason, last_complete_at)
VALUES (:source, :run_id, :at, :complete, :stop_reason, CASE WHEN :complete THEN :at END)
ON CONFLICT (source) DO UPDATE SET last_run_id = :run_id, last_walk_at = :at, complete = :complete,
    stop_reason = :stop_reason, last_complete_at = CASE WHEN :complete THEN :at ELSE last_complete_at END
"""
# Due: never fetched; or failed, gone or skipped with its next attempt reached. Links earlier
# runs left come first (rowid is the order links were found in).
_DUE_LINKS = """
SELECT url FROM frontier
WHERE source = :source AND kind = 'article'
  AND (state = 'pending' OR (state IN ('failed', 'gone', 'skipped') AND next_attempt_at <= :now))
ORDER BY state <> 'pending', rowid
"""
_LISTING_RESUME = """
SELECT url FROM frontier
WHERE source = :source AND kind = 'listing'
  AND (state = 'pending' OR (state IN ('failed', 'gone') AND next_attempt_at <= :now))
ORDER BY rowid
"""
_MARK_LINK_LOADED = """
UPDATE frontier SET state = 'loaded', updated_at = ?2, last_run_id = ?3
WHERE kind = 'article' AND state = 'fetched'
  AND url = (SELECT url FROM fetches WHERE fetch_id = ?1)
  AND (SELECT f.loaded_run_id FROM fetches f WHERE f.url = frontier.url AND f.outcome = 'fetched'
       ORDER BY f.fetch_id DESC LIMIT 1) IS NOT NULL
"""

# The newest body of a link is no longer loaded (its run's warehouse is gone): fetched again.
_LINKS_UNLOADED = """
UPDATE frontier SET state = 'fetched', updated_at = ?
WHERE kind = 'article' AND state = 'loaded'
  AND EXISTS (SELECT 1 FROM fetches f WHERE f.url = frontier.url AND f.outcome = 'fetched')
  AND (SELECT f.loaded_run_id FROM fetches f WHERE f.url = frontier.url AND f.outcome = 'fetched'
       ORDER BY f.fetch_id DESC LIMIT 1) IS NULL
"""

_FAILED_STATES = frozenset({"failed", "gone"})  # states that count a failed attempt
_DAMAGE_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")  # sqlite_errorname prefixes of a damaged file


class ArchiveDamagedError(RuntimeError):
    """The archive file is not a sound SQLite database; the message names it and the fix."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path, self.detail = path, detail
        super().__init__(
            f"the raw archive {path} is damaged ({detail}): set it aside with "
            f"`python -m tasks.crawl.archive set-aside {path}`, and the next run starts a new archive "
            f"(it fetches every page again and loads only what changed); to salvage its pages first: "
            f"`sqlite3 {path} .recover | sqlite3 {path}.recovered`")  # fmt: skip


@dataclass(frozen=True)
class FrontierLink:
    """A link of the frontier with its state (a row of `frontier`)."""

    url: str
    source: str
    kind: str  # article | listing
    state: str  # see the module docstring
    reason: str | None
    failures: int
    next_attempt_at: datetime | None
    first_seen_at: datetime
    first_seen_run_id: str | None


@dataclass(frozen=True)
class PageState:
    """Crawl state of one URL (a row of `pages`)."""

    url: str
    source: str
    first_seen_at: datetime
    last_attempt_at: datetime
    last_checked_at: datetime | None  # last time the server confirmed the page
    last_fetched_at: datetime | None  # last time a body arrived
    etag: str | None
    last_modified: str | None
    last_sha256: str | None
    last_outcome: FetchOutcome


@dataclass(frozen=True)
class ArchivedFetch:
    """One archived fetch without its body (read it with `RawArchive.body(fetch_id)`)."""

    fetch_id: int
    run_id: str
    source: str
    url: str
    final_url: str | None
    outcome: FetchOutcome
    status: int | None
    content_type: str | None
    fetched_at: datetime
    sha256: str | None
    size: int | None
    loaded_run_id: str | None


class RawArchive:
    """SQLite-backed raw archive; a context manager, safe to share between threads."""

    def __init__(self, path: str | Path | None = None) -> None:
        """Open (or create) the archive, check it and bring its schema up to date; raises
        ArchiveDamagedError if the file is damaged."""
        self.path = Path(path) if path is not None else settings.ARCHIVE_DIR / ARCHIVE_FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # one connection, used by one thread at a time
        self._disk_full: str | None = None
        self._conn = _open_checked(self.path)
        try:
            _migrate(self._conn)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise _damage(self.path, exc) or exc from None

    def disk_full(self) -> str | None:
        """Why a write was refused for want of disk space, if one was (the first such refusal)."""
        return self._disk_full

    def __enter__(self) -> RawArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def record(self, run_id: str, source: str, result: FetchResult, *,
               gone_recheck_after: timedelta | None = None) -> int:  # fmt: skip
        """Log one fetch outcome, keep its body if it succeeded, update `pages` and the
        frontier (a 404/410 is gone until `gone_recheck_after`, default
        GONE_RECHECK_AFTER_DAYS, has passed); return fetch_id."""
        row = _fetch_row(run_id, source, result)
        body = result.body if result.outcome in _BODY_OUTCOMES else None
        compressed = zlib.compress(body, 6) if body is not None else None
        with self._transaction() as conn:
            if compressed is not None:
                conn.execute("INSERT OR IGNORE INTO blobs (sha256, size, body) VALUES (?, ?, ?)",
                             (row["body_sha256"], row["size"], compressed))  # fmt: skip
            row["fetch_id"] = conn.execute(_NEXT_FETCH_ID, {"now_us": time.time_ns() // 1000}).fetchone()[0]
            fetch_id = conn.execute(_INSERT_FETCH, row).lastrowid
            conn.execute(_UPSERT_PAGE, _page_row(row, result.outcome))
            conn.execute(_UPDATE_ARTICLE, _frontier_move(result, run_id, gone_recheck_after))
        assert fetch_id is not None  # sqlite sets it after every INSERT
        return fetch_id

    # -- the frontier
    def record_listing_page(self, run_id: str, source: str, page: ListingPage, at: datetime | None = None) -> None:
        """A listing page was read: its article links join the frontier (pending unless known)
        and the pages it leads to are queued, in one transaction."""
        stamp: dict[str, Any] = {"run_id": run_id, "source": source, "at": _iso(at or datetime.now(UTC))}
        links = [stamp | {"url": link.url, "found_on": page.url, "title": link.title,
                          "listed_date": link.listed_date.isoformat() if link.listed_date else None}
                 for link in page.links]  # fmt: skip
        with self._transaction() as conn:
            conn.execute(_LISTING_READ, stamp | {"url": page.url, "links_found": len(page.links),
                                                 "declared_records": page.declared_records})  # fmt: skip
            conn.executemany(_ADD_LINK, links)
            conn.executemany(_LISTING_QUEUED, [stamp | {"url": url, "found_on": page.url} for url in page.next_pages])

    def record_listing_failure(self, run_id: str, source: str, result: FetchResult, *,
                               gone_recheck_after: timedelta | None = None) -> int:  # fmt: skip
        """A listing page could not be read: logged like any fetch, and failed (read again next
        run) or gone (404/410: not before `gone_recheck_after`) in the frontier."""
        fetch_id = self.record(run_id, source, result, gone_recheck_after=gone_recheck_after)
        move = _frontier_move(result, run_id, gone_recheck_after)
        with self._transaction() as conn:
            conn.execute(_LISTING_FAILED, move | {"source": source})
        return fetch_id

    def finish_listing_walk(self, run_id: str, discovery: Discovery, at: datetime | None = None) -> None:
        """Record how a walk ended: pages it left are pending (the next run starts there),
        queued pages it did not need are not; a walk with nothing left or failed is complete."""
        stamp: dict[str, Any] = {"run_id": run_id, "at": _iso(at or datetime.now(UTC))}
        with self._transaction() as conn:
            conn.executemany(_LISTING_NOT_NEEDED, [stamp | {"url": url} for url in discovery.not_needed])
            conn.executemany(_LISTING_LEFT, [stamp | {"url": url} for url in discovery.pages_left])
            conn.execute(_WALK_DONE, stamp | {"source": discovery.source, "complete": discovery.complete,
                                              "stop_reason": discovery.stop_reason})  # fmt: skip

    def walked_before(self, source: str) -> bool:
        """Did a walk of `source` ever finish? From then on, every listing page a walk left
        unread or could not read is in the frontier (and read first by the next walk)."""
        return bool(self._query("SELECT 1 FROM listing_walks WHERE source = ?", (source,)))

    def listing_resume(self, source: str, now: datetime | None = None) -> list[str]:
        """Listing pages earlier walks left: queued but unread, or failed, or gone and due."""
        rows = self._query(_LISTING_RESUME, {"source": source, "now": _iso(now or datetime.now(UTC))})
        return [row["url"] for row in rows]

    def listing_not_due(self, source: str, now: datetime | None = None) -> frozenset[str]:
        """Listing pages gone (404/410) whose re-check is not due: a walk does not request them."""
        rows = self._query("SELECT url FROM frontier WHERE source = ? AND kind = 'listing' AND state = 'gone'"
                           " AND next_attempt_at > ?", (source, _iso(now or datetime.now(UTC))))  # fmt: skip
        return frozenset(row["url"] for row in rows)

    def frontier_urls(self) -> set[str]:
        """Every article link the frontier holds, of any source and state: the known links."""
        return {row["url"] for row in self._query("SELECT url FROM frontier WHERE kind = 'article'")}

    def due_links(self, source: str, now: datetime | None = None) -> list[str]:
        """Article links of `source` to request now: pending ones (earlier runs' first), then
        failed, gone and skipped ones whose next attempt is due."""
        return [row["url"] for row in self._query(_DUE_LINKS, {"source": source,
                                                               "now": _iso(now or datetime.now(UTC))})]  # fmt: skip

    def frontier(self, source: str | None = None, kind: str | None = None,
                 states: Iterable[str] | None = None) -> list[FrontierLink]:  # fmt: skip
        """Frontier rows, in the order they were found, optionally of one source, kind, states."""
        wanted = list(states) if states is not None else None
        rows = self._query(
            "SELECT * FROM frontier WHERE (:source IS NULL OR source = :source) AND (:kind IS NULL OR kind = :kind)"
            " ORDER BY rowid", {"source": source, "kind": kind})  # fmt: skip
        return [_frontier_link(row) for row in rows if wanted is None or row["state"] in wanted]

    def gone_waiting(self, source: str, now: datetime | None = None) -> list[FrontierLink]:
        """Article links of `source` that answered 404/410 and are not due a re-check yet."""
        cutoff = _iso(now or datetime.now(UTC))
        return [link for link in self.frontier(source, "article", {"gone"})
                if link.next_attempt_at is not None and _iso(link.next_attempt_at) > cutoff]  # fmt: skip

    def links_known(self, source: str) -> int:
        """How many article links of `source` the frontier holds (all runs, all states)."""
        rows = self._query("SELECT count(*) AS n FROM frontier WHERE source = ? AND kind = 'article'", (source,))
        return int(rows[0]["n"])

    def page_states(self, urls: Iterable[str]) -> dict[str, PageState]:
        """Crawl state of those `urls` that were ever recorded."""
        states = {}
        for chunk in _chunks(list(dict.fromkeys(urls))):
            marks = ",".join("?" * len(chunk))
            for row in self._query(f"SELECT * FROM pages WHERE url IN ({marks})", chunk):
                states[row["url"]] = _page_state(row)
        return states

    def known_urls(self, source: str) -> set[str]:
        """URLs of `source` whose body was fetched at least once (HTML or not)."""
        rows = self._query("SELECT url FROM pages WHERE source = ? AND last_fetched_at IS NOT NULL", (source,))
        return {row["url"] for row in rows}

    def due_for_revalidation(self, source: str, older_than: timedelta, now: datetime | None = None) -> list[PageState]:
        """Known pages of `source` not confirmed by the server for `older_than`, oldest first;
        not those the frontier holds as gone (their back-off decides) or pending."""
        cutoff = _iso((now or datetime.now(UTC)) - older_than)
        rows = self._query(
            "SELECT * FROM pages AS p WHERE source = ? AND last_fetched_at IS NOT NULL AND last_checked_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM frontier AS f WHERE f.url = p.url AND f.state IN ('gone', 'pending'))"
            " ORDER BY last_checked_at, url",
            (source, cutoff),
        )
        return [_page_state(row) for row in rows]

    def body(self, fetch_id: int) -> bytes:
        """The body bytes of a FETCHED or NON_HTML fetch; KeyError if it has none."""
        rows = self._query(
            "SELECT b.body FROM fetches AS f JOIN blobs AS b ON b.sha256 = f.body_sha256 WHERE f.fetch_id = ?",
            (fetch_id,),
        )
        if not rows:
            raise KeyError(f"fetch {fetch_id} has no archived body")
        return zlib.decompress(rows[0]["body"])

    def unloaded(self, source: str | None = None) -> list[ArchivedFetch]:
        """Newest FETCHED fetch per URL that the warehouse has not committed, oldest first."""
        return [_archived_fetch(row) for row in self._query(_UNLOADED, {"source": source})]

    def mark_loaded(self, fetch_ids: Iterable[int], run_id: str) -> int:
        """Record that the warehouse committed these fetches in `run_id` (their links are
        loaded in the frontier once their newest body is); return fetch rows changed."""
        ids = list(fetch_ids)
        at = _iso(datetime.now(UTC))
        with self._transaction() as conn:
            cursor = conn.executemany(
                "UPDATE fetches SET loaded_run_id = ? WHERE fetch_id = ? AND loaded_run_id IS NULL",
                [(run_id, fetch_id) for fetch_id in ids],
            )
            changed = cursor.rowcount
            conn.executemany(_MARK_LINK_LOADED, [(fetch_id, at, run_id) for fetch_id in ids])
            return changed

    def latest_fetched(self, source: str | None = None) -> Iterator[ArchivedFetch]:
        """Newest FETCHED fetch per URL, streamed from a separate read-only connection."""
        with closing(_connect_read_only(self.path)) as conn:
            for row in conn.execute(_LATEST_FETCHED, {"source": source}):
                yield _archived_fetch(row)

    def fetch_log(self, run_id: str) -> list[dict[str, Any]]:
        """All fetch rows of `run_id`, oldest first, shaped for the warehouse's fetch log."""
        rows = self._query("SELECT * FROM fetches WHERE run_id = ? ORDER BY fetch_id", (run_id,))
        return [_log_row(row) for row in rows]

    def fetch_log_after(self, fetch_id: int | None) -> list[dict[str, Any]]:
        """Fetch rows written after `fetch_id` (all of them for None), oldest first, shaped for
        the warehouse's fetch log: what it lacks when its newest row is `fetch_id`, whichever
        runs wrote them (ids grow with time, see the module docstring)."""
        rows = self._query("SELECT * FROM fetches WHERE fetch_id > ? ORDER BY fetch_id",
                           (-1 if fetch_id is None else fetch_id,))  # fmt: skip
        return [_log_row(row) for row in rows]

    # -- the warehouse these marks belong to
    def loaded_run_ids(self) -> set[str]:
        """The runs that loaded archived pages into a warehouse (their loaded marks)."""
        rows = self._query("SELECT DISTINCT loaded_run_id FROM fetches WHERE loaded_run_id IS NOT NULL")
        return {row["loaded_run_id"] for row in rows}

    def forget_loads(self, run_ids: Iterable[str]) -> int:
        """The warehouse that `run_ids` loaded into is gone (replaced, new, or restored from
        before them): their pages are unloaded again, and their links fetched rather than
        loaded, so that the next load brings them back. Returns the fetch rows unmarked."""
        ids = list(run_ids)
        with self._transaction() as conn:
            forgotten = 0
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                forgotten += conn.execute(f"UPDATE fetches SET loaded_run_id = NULL WHERE loaded_run_id IN ({marks})",
                                          chunk).rowcount  # fmt: skip
            if forgotten:
                conn.execute(_LINKS_UNLOADED, (_iso(datetime.now(UTC)),))
            return forgotten

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" and self._disk_full is None:
                    self._disk_full = f"{self.path}: {exc}"
                raise

    def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (_transaction), never implicit.
    conn = sqlite3.connect(path, timeout=settings.ARCHIVE_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: consistent after any crash
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _open_checked(path: Path) -> sqlite3.Connection:
    """_connect, then SQLite's quick_check (every page and index of the file is read);
    ArchiveDamagedError if the file is damaged or not a database at all."""
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(path)
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise _damage(path, exc) or exc from None
    if problems != ["ok"]:
        conn.close()
        raise ArchiveDamagedError(path, "quick_check: " + "; ".join(problems))
    return conn


def _damage(path: Path, exc: sqlite3.DatabaseError) -> ArchiveDamagedError | None:
    """The ArchiveDamagedError an SQLite error means, if it says the file is damaged."""
    if getattr(exc, "sqlite_errorname", "").startswith(_DAMAGE_CODES):
        return ArchiveDamagedError(path, str(exc))
    return None


@dataclass(frozen=True)
class ArchiveProgress:
    """What the archive holds for a run that is stopping: what it kept, what is left."""

    fetched_by_run: int  # bodies this run archived
    loaded_by_run: int  # pages this run loaded into the warehouse
    unloaded: int  # newest bodies of any run the warehouse has not committed
    pending_links: int  # article links found and not fetched yet
    pending_listings: int  # listing pages queued and not read yet


def archive_progress(path: Path, run_id: str) -> ArchiveProgress | None:
    """ArchiveProgress of `run_id`, read on a connection of its own (the run's may be busy);
    None when there is no archive, or no readable one."""
    if not path.exists():
        return None
    try:
        with closing(_connect_read_only(path)) as conn:
            one = lambda sql, *args: int(conn.execute(sql, args).fetchone()[0])  # noqa: E731
            return ArchiveProgress(
                fetched_by_run=one("SELECT count(*) FROM fetches WHERE run_id = ? AND outcome = 'fetched'", run_id),
                loaded_by_run=one("SELECT count(*) FROM fetches WHERE loaded_run_id = ?", run_id),
                unloaded=one(f"SELECT count(*) FROM ({_UNLOADED.replace(':source', 'NULL')})"),
                pending_links=one("SELECT count(*) FROM frontier WHERE kind = 'article' AND state = 'pending'"),
                pending_listings=one("SELECT count(*) FROM frontier WHERE kind = 'listing' AND state = 'pending'"),
            )  # fmt: skip
    except sqlite3.Error:
        return None


def check(path: Path) -> None:
    """Raise ArchiveDamagedError if the archive at `path` is damaged; never creates one."""
    if path.exists():
        _open_checked(path).close()


def set_aside(path: Path, now: datetime | None = None) -> list[Path]:
    """Rename a (damaged) archive and its -wal/-shm files to <name>.damaged-<UTC time>, so
    that the next run starts a new one; return the new names."""
    stamp = f"{now or datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    moved = []
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if part.exists():
            target = part.with_name(part.name.replace(path.name, f"{path.name}.damaged-{stamp}", 1))
            part.rename(target)
            moved.append(target)
    return moved


def main(argv: list[str] | None = None) -> int:
    """python -m tasks.crawl.archive check|set-aside FILE"""
    parser = argparse.ArgumentParser(prog="python -m tasks.crawl.archive",
                                     description="Check the raw archive, or set a damaged one aside.")  # fmt: skip
    parser.add_argument("command", choices=["check", "set-aside"])
    parser.add_argument("path", type=Path, help="the archive file (data/archive/archive.sqlite)")
    args = parser.parse_args(argv)
    if not args.path.exists():
        print(f"no archive at {args.path}", file=sys.stderr)
        return 1
    if args.command == "check":
        try:
            check(args.path)
        except ArchiveDamagedError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"{args.path}: ok")
        return 0
    moved = set_aside(args.path)
    print(f"set aside as {', '.join(str(m) for m in moved)}; the next run starts a new archive at {args.path}")
    return 0


def _connect_read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=settings.ARCHIVE_BUSY_TIMEOUT)
    conn.row_factory = sqlite3.Row
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to the latest version; a no-op when it is current."""
    conn.execute("BEGIN IMMEDIATE")  # read the version under the write lock: two openers migrate once
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(_MIGRATIONS):
            raise RuntimeError(f"archive schema version {version} is newer than this code ({len(_MIGRATIONS)})")
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(_MIGRATIONS)}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _fetch_row(run_id: str, source: str, result: FetchResult) -> dict[str, Any]:
    body = result.body if result.outcome in _BODY_OUTCOMES else None
    body_sha256 = hashlib.sha256(body).hexdigest() if body is not None else None
    return {
        "run_id": run_id, "source": source, "url": result.url, "final_url": result.final_url,
        "outcome": str(result.outcome), "status": result.status, "reason": result.reason,
        "content_type": result.content_type, "headers_json": json.dumps(result.headers, ensure_ascii=False),
        "fetched_at": _iso(result.fetched_at or datetime.now(UTC)), "elapsed_s": result.elapsed_s,
        "attempts": result.attempts, "retry_reasons_json": json.dumps(result.retry_reasons, sort_keys=True),
        "etag": result.etag, "last_modified": result.last_modified,
        "sha256": body_sha256 or result.sha256, "size": len(body) if body is not None else None,
        "body_sha256": body_sha256,
    }  # fmt: skip


def _page_row(row: dict[str, Any], outcome: FetchOutcome) -> dict[str, Any]:
    """A fetch row as `pages` takes it. Validators come only with a body or a confirmation:
    a failure's headers (a 304 nobody asked for carries an ETag) must not make the next
    request conditional, or its 304 would pass for "not modified"."""
    confirmed = outcome in _CONFIRMED_OUTCOMES
    return {
        **row,
        "checked_at": row["fetched_at"] if confirmed else None,
        "body_at": row["fetched_at"] if outcome in _BODY_OUTCOMES else None,
        "etag": row["etag"] if confirmed else None,
        "last_modified": row["last_modified"] if confirmed else None,
    }


def _log_row(row: sqlite3.Row) -> dict[str, Any]:
    """A fetches row with its JSON columns as dicts and fetched_at as a datetime."""
    log_row = dict(row)
    log_row["headers"] = json.loads(log_row.pop("headers_json"))
    log_row["retry_reasons"] = json.loads(log_row.pop("retry_reasons_json"))
    log_row["fetched_at"] = _parse(log_row["fetched_at"])
    return log_row


def _page_state(row: sqlite3.Row) -> PageState:
    return PageState(
        url=row["url"], source=row["source"],
        first_seen_at=datetime.fromisoformat(row["first_seen_at"]),  # NOT NULL, unlike the next two
        last_attempt_at=datetime.fromisoformat(row["last_attempt_at"]),
        last_checked_at=_parse(row["last_checked_at"]), last_fetched_at=_parse(row["last_fetched_at"]),
        etag=row["etag"], last_modified=row["last_modified"], last_sha256=row["last_sha256"],
        last_outcome=FetchOutcome(row["last_outcome"]),
    )  # fmt: skip


def _frontier_move(result: FetchResult, run_id: str, gone_recheck_after: timedelta | None) -> dict[str, Any]:
    """The frontier state a fetch outcome means, with its reason and next attempt.

    None for a 304: the page's newest body decides between fetched and loaded (SQL).
    """
    at = result.fetched_at or datetime.now(UTC)
    state: str | None
    next_attempt: datetime | None = None
    if result.outcome is FetchOutcome.FETCHED:
        state = "fetched"
    elif result.outcome is FetchOutcome.NOT_MODIFIED:
        state = None
    elif result.outcome is FetchOutcome.NON_HTML:
        state = "skipped"
    elif result.outcome is FetchOutcome.SKIPPED_ROBOTS:
        state, next_attempt = "skipped", at  # robots.txt may change: asked again next run
    elif is_gone(result):
        state = "gone"
        if gone_recheck_after is None:  # a zero back-off is a setting, not a missing one
            gone_recheck_after = timedelta(days=settings.GONE_RECHECK_AFTER_DAYS)
        next_attempt = at + gone_recheck_after
    else:
        state, next_attempt = "failed", at  # retried next run
    return {"url": result.url, "state": state, "reason": result.reason if state != "fetched" else None,
            "next_attempt_at": _iso(next_attempt) if next_attempt else None, "failed": state in _FAILED_STATES,
            "at": _iso(at), "run_id": run_id}  # fmt: skip


def is_gone(result: FetchResult) -> bool:
    """Did the server say the page is gone (404 Not Found, 410 Gone)?"""
    return result.outcome is FetchOutcome.HTTP_ERROR and result.status in GONE_STATUSES


def _frontier_link(row: sqlite3.Row) -> FrontierLink:
    return FrontierLink(
        url=row["url"], source=row["source"], kind=row["kind"], state=row["state"], reason=row["reason"],
        failures=row["failures"], next_attempt_at=_parse(row["next_attempt_at"]),
        first_seen_at=datetime.fromisoformat(row["first_seen_at"]), first_seen_run_id=row["first_seen_run_id"],
    )  # fmt: skip


def _archived_fetch(row: sqlite3.Row) -> ArchivedFetch:
    fields = dict(row)
    fields["outcome"] = FetchOutcome(fields["outcome"])
    fields["fetched_at"] = _parse(fields["fetched_at"])
    return ArchivedFetch(**fields)


def _iso(moment: datetime) -> str:
    # One fixed format (UTC, microseconds) so that text order is time order in SQL.
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start:start + _IN_CHUNK]


if __name__ == "__main__":
    sys.exit(main())
