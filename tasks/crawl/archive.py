"""The raw archive: every fetch outcome, every fetched body (compressed), and crawl state.

It is a SQLite file beside the DuckDB warehouse, not inside it, on purpose: analysts'
readers may hold the DuckDB file while the crawler must write, and pages whose
warehouse load failed must wait for the next run (`unloaded`, `mark_loaded`). A
reprocess flow rebuilds reports from `latest_fetched` with no network.

Tables (schema version in `PRAGMA user_version`, migrated on open):

- fetches: one row per fetch outcome, the fetch log. `body_sha256` points at `blobs`
  for FETCHED and NON_HTML; `loaded_run_id` stays NULL until the warehouse has
  committed the page.
- blobs: body bytes, zlib-compressed, one row per distinct SHA-256 (identical pages
  are stored once). Only bodies of successful fetches are ever stored.
- pages: crawl state per requested URL, for discovery and conditional GET.
  `last_checked_at` moves when the server confirmed the page (FETCHED, NON_HTML,
  NOT_MODIFIED), `last_attempt_at` on every outcome, `last_fetched_at` when a body
  arrived; validators (etag, last_modified) come from the latest body.

Each record is one transaction in WAL mode, so a kill -9 at any point leaves the whole
record or none of it. Timestamps are ISO 8601 text in UTC.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tasks import settings
from tasks.records import FetchOutcome, FetchResult

ARCHIVE_FILENAME = "archive.sqlite"
_BODY_OUTCOMES = frozenset({FetchOutcome.FETCHED, FetchOutcome.NON_HTML})
_CONFIRMED_OUTCOMES = _BODY_OUTCOMES | {FetchOutcome.NOT_MODIFIED}
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
)

_INSERT_FETCH = """
INSERT INTO fetches (run_id, source, url, final_url, outcome, status, reason, content_type,
    headers_json, fetched_at, elapsed_s, attempts, retry_reasons_json, etag, last_modified,
    sha256, size, body_sha256)
VALUES (:run_id, :source, :url, :final_url, :outcome, :status, :reason, :content_type,
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
        self.path = Path(path) if path is not None else settings.ARCHIVE_DIR / ARCHIVE_FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # one connection, used by one thread at a time
        self._conn = _connect(self.path)
        _migrate(self._conn)

    def __enter__(self) -> RawArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def record(self, run_id: str, source: str, result: FetchResult) -> int:
        """Log one fetch outcome, keep its body if it succeeded, update `pages`; return fetch_id."""
        row = _fetch_row(run_id, source, result)
        body = result.body if result.outcome in _BODY_OUTCOMES else None
        compressed = zlib.compress(body, 6) if body is not None else None
        with self._transaction() as conn:
            if compressed is not None:
                conn.execute("INSERT OR IGNORE INTO blobs (sha256, size, body) VALUES (?, ?, ?)",
                             (row["body_sha256"], row["size"], compressed))  # fmt: skip
            fetch_id = conn.execute(_INSERT_FETCH, row).lastrowid
            conn.execute(_UPSERT_PAGE, _page_row(row, result.outcome))
        assert fetch_id is not None  # sqlite sets it after every INSERT
        return fetch_id

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
        """Known pages of `source` not confirmed by the server for `older_than`, oldest first."""
        cutoff = _iso((now or datetime.now(UTC)) - older_than)
        rows = self._query(
            "SELECT * FROM pages WHERE source = ? AND last_fetched_at IS NOT NULL AND last_checked_at < ?"
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
        """Record that the warehouse committed these fetches in `run_id`; return rows changed."""
        with self._transaction() as conn:
            cursor = conn.executemany(
                "UPDATE fetches SET loaded_run_id = ? WHERE fetch_id = ? AND loaded_run_id IS NULL",
                [(run_id, fetch_id) for fetch_id in fetch_ids],
            )
            return cursor.rowcount

    def latest_fetched(self, source: str | None = None) -> Iterator[ArchivedFetch]:
        """Newest FETCHED fetch per URL, streamed from a separate read-only connection."""
        with closing(_connect_read_only(self.path)) as conn:
            for row in conn.execute(_LATEST_FETCHED, {"source": source}):
                yield _archived_fetch(row)

    def fetch_log(self, run_id: str) -> list[dict[str, Any]]:
        """All fetch rows of `run_id`, oldest first, shaped for the warehouse's fetch log."""
        rows = self._query("SELECT * FROM fetches WHERE run_id = ? ORDER BY fetch_id", (run_id,))
        return [_log_row(row) for row in rows]

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

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
    return {
        **row,
        "checked_at": row["fetched_at"] if outcome in _CONFIRMED_OUTCOMES else None,
        "body_at": row["fetched_at"] if outcome in _BODY_OUTCOMES else None,
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
