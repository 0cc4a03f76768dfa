"""RawArchive: the archive's logic, once for both backends (dialect.py, schema.py).

What is recorded and how the frontier moves is decided here, in Python and in the SQL of
schema.py; a backend only runs it (sqlite.py, postgres.py).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tasks import settings
# The PostgreSQL backend (and psycopg with it, ~9 MB) is imported only where an archive in
# PostgreSQL is used, not by every run that keeps its archive in SQLite.
from tasks.crawl.archive import schema, sqlite
from tasks.crawl.archive.dialect import Database, Row, Session
from tasks.crawl.archive.errors import ArchiveError
from tasks.crawl.archive.location import ArchiveLocation, as_location
from tasks.crawl.archive.postgres_location import PostgresArchive
from tasks.crawl.discover import Discovery, ListingPage
from tasks.records import FetchOutcome, FetchResult

_BODY_OUTCOMES = frozenset({FetchOutcome.FETCHED, FetchOutcome.NON_HTML})
_CONFIRMED_OUTCOMES = _BODY_OUTCOMES | {FetchOutcome.NOT_MODIFIED}
GONE_STATUSES = frozenset({404, 410})  # the server says the page is gone: re-checked on a back-off
_FAILED_STATES = frozenset({"failed", "gone"})  # states that count a failed attempt
_IN_CHUNK = 500  # ids or URLs per "IN (...)" query, well under either backend's parameter limit


@dataclass(frozen=True)
class FrontierLink:
    """A link of the frontier with its state (a row of `frontier`)."""

    url: str
    source: str
    kind: str  # article | listing
    state: str  # see the package docstring
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


@dataclass(frozen=True)
class _Recording:
    """One fetch outcome made ready to write (hashed, compressed) before the write lock."""

    fetch: dict[str, Any]  # a fetches row, less its fetch_id
    page: dict[str, Any]  # the pages upsert
    move: dict[str, Any]  # the frontier move
    body: bytes | None  # compressed


class RawArchive:
    """The raw archive on either backend; a context manager, safe to share between threads."""

    def __init__(self, where: str | Path | PostgresArchive | None = None) -> None:
        """Open (or create) the archive at `where` (a SQLite file, `postgres:<dsn>`, a
        location; None: settings.ARCHIVE_DIR/archive.sqlite), check it and bring its schema
        up to date. ArchiveDamagedError if it is damaged, ArchiveUnavailableError if its
        PostgreSQL cannot be reached."""
        self.location: ArchiveLocation = as_location(where)
        self._db = open_database(self.location)
        self._group_commit = _GroupCommit(self._write_recordings, self._db.data_errors)
        try:
            _migrate(self._db)
        except BaseException:
            self._db.close()
            raise

    def disk_full(self) -> str | None:
        """Why a write was refused for want of disk space, if one was (the first such refusal)."""
        return self._db.disk_full()

    def __enter__(self) -> RawArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # -- recording fetches
    def record(self, run_id: str, source: str, result: FetchResult, *,
               gone_recheck_after: timedelta | None = None) -> int:  # fmt: skip
        """Log one fetch outcome, keep its body if it succeeded, update `pages` and the
        frontier (a 404/410 is gone until `gone_recheck_after`, default
        GONE_RECHECK_AFTER_DAYS, has passed); return fetch_id once it is committed. Threads
        recording at the same time share transactions (_GroupCommit)."""
        return self._group_commit.submit(_prepare(run_id, source, result, gone_recheck_after))

    def record_many(self, run_id: str, source: str, results: Sequence[FetchResult], *,
                    gone_recheck_after: timedelta | None = None) -> list[int]:  # fmt: skip
        """`record` for several outcomes of one source, in one transaction (a fetch batch at
        once: one write lock and one commit, a few statements in all); the same as recording
        them one by one, in order. Returns their fetch ids in that order."""
        return self._write_recordings([_prepare(run_id, source, result, gone_recheck_after) for result in results])

    def _write_recordings(self, recordings: Sequence[_Recording]) -> list[int]:
        with self._db.write() as tx:
            return _write_recordings(tx, recordings)

    # -- the frontier
    def record_listing_page(self, run_id: str, source: str, page: ListingPage, at: datetime | None = None) -> None:
        """A listing page was read: its article links join the frontier (pending unless known)
        and the pages it leads to are queued, in one transaction."""
        stamp: dict[str, Any] = {"run_id": run_id, "source": source, "at": _iso(at or datetime.now(UTC))}
        links = [stamp | {"url": link.url, "found_on": page.url, "title": link.title,
                          "listed_date": link.listed_date.isoformat() if link.listed_date else None}
                 for link in page.links]  # fmt: skip
        with self._db.write() as tx:
            tx.execute(schema.LISTING_READ, stamp | {"url": page.url, "links_found": len(page.links),
                                                     "declared_records": page.declared_records})  # fmt: skip
            tx.executemany(schema.ADD_LINK, links)
            tx.executemany(schema.LISTING_QUEUED, [stamp | {"url": url, "found_on": page.url}
                                                   for url in page.next_pages])  # fmt: skip

    def record_listing_failure(self, run_id: str, source: str, result: FetchResult, *,
                               gone_recheck_after: timedelta | None = None) -> int:  # fmt: skip
        """A listing page could not be read: logged like any fetch, and failed (read again next
        run) or gone (404/410: not before `gone_recheck_after`) in the frontier, in one
        transaction."""
        prepared = _prepare(run_id, source, result, gone_recheck_after)
        with self._db.write() as tx:
            (fetch_id,) = _write_recordings(tx, [prepared])
            tx.execute(schema.LISTING_FAILED, prepared.move | {"source": source})
        return fetch_id

    def finish_listing_walk(self, run_id: str, discovery: Discovery, at: datetime | None = None) -> None:
        """Record how a walk ended: pages it left are pending (the next run starts there),
        queued pages it did not need are not; a walk with nothing left or failed is complete."""
        stamp: dict[str, Any] = {"run_id": run_id, "at": _iso(at or datetime.now(UTC))}
        with self._db.write() as tx:
            tx.executemany(schema.LISTING_NOT_NEEDED, [stamp | {"url": url} for url in discovery.not_needed])
            tx.executemany(schema.LISTING_LEFT, [stamp | {"url": url} for url in discovery.pages_left])
            tx.execute(schema.WALK_DONE, stamp | {"source": discovery.source, "complete": int(discovery.complete),
                                                  "stop_reason": discovery.stop_reason})  # fmt: skip

    def walked_before(self, source: str) -> bool:
        """Did a walk of `source` ever finish? From then on, every listing page a walk left
        unread or could not read is in the frontier (and read first by the next walk)."""
        return bool(self._rows(schema.WALKED_BEFORE, {"source": source}))

    def listing_resume(self, source: str, now: datetime | None = None) -> list[str]:
        """Listing pages earlier walks left: queued but unread, or failed, or gone and due."""
        rows = self._rows(schema.LISTING_RESUME, {"source": source, "now": _iso(now or datetime.now(UTC))})
        return [row["url"] for row in rows]

    def listing_not_due(self, source: str, now: datetime | None = None) -> frozenset[str]:
        """Listing pages gone (404/410) whose re-check is not due: a walk does not request them."""
        rows = self._rows(schema.LISTING_NOT_DUE, {"source": source, "now": _iso(now or datetime.now(UTC))})
        return frozenset(row["url"] for row in rows)

    def frontier_urls(self) -> set[str]:
        """Every article link the frontier holds, of any source and state: the known links."""
        return {row["url"] for row in self._rows(schema.ARTICLE_URLS)}

    def due_links(self, source: str, now: datetime | None = None) -> list[str]:
        """Article links of `source` to request now: pending ones (earlier runs' first), then
        failed, gone and skipped ones whose next attempt is due."""
        rows = self._rows(schema.DUE_LINKS, {"source": source, "now": _iso(now or datetime.now(UTC))})
        return [row["url"] for row in rows]

    def frontier(self, source: str | None = None, kind: str | None = None,
                 states: Iterable[str] | None = None) -> list[FrontierLink]:  # fmt: skip
        """Frontier rows, in the order they were found, optionally of one source, kind, states."""
        wanted = list(states) if states is not None else None
        rows = self._rows(schema.FRONTIER, {"source": source, "kind": kind})
        return [_frontier_link(row) for row in rows if wanted is None or row["state"] in wanted]

    def gone_waiting(self, source: str, now: datetime | None = None) -> list[FrontierLink]:
        """Article links of `source` that answered 404/410 and are not due a re-check yet."""
        cutoff = _iso(now or datetime.now(UTC))
        return [link for link in self.frontier(source, "article", {"gone"})
                if link.next_attempt_at is not None and _iso(link.next_attempt_at) > cutoff]  # fmt: skip

    def links_known(self, source: str) -> int:
        """How many article links of `source` the frontier holds (all runs, all states)."""
        return int(self._rows(schema.LINKS_KNOWN, {"source": source})[0]["n"])

    # -- crawl state per URL
    def page_states(self, urls: Iterable[str]) -> dict[str, PageState]:
        """Crawl state of those `urls` that were ever recorded."""
        states = {}
        with self._db.read() as session:
            for chunk in _chunks(list(dict.fromkeys(urls))):
                where, params = schema.in_list("url", chunk, "u")
                for row in session.rows(f"SELECT * FROM pages WHERE {where}", params):
                    states[row["url"]] = _page_state(row)
        return states

    def known_urls(self, source: str) -> set[str]:
        """URLs of `source` whose body was fetched at least once (HTML or not)."""
        return {row["url"] for row in self._rows(schema.KNOWN_URLS, {"source": source})}

    def due_for_revalidation(self, source: str, older_than: timedelta, now: datetime | None = None) -> list[PageState]:
        """Known pages of `source` not confirmed by the server for `older_than`, oldest first;
        not those the frontier holds as gone (their back-off decides) or pending."""
        cutoff = _iso((now or datetime.now(UTC)) - older_than)
        return [_page_state(row) for row in self._rows(schema.DUE_FOR_REVALIDATION, {"source": source,
                                                                                     "cutoff": cutoff})]  # fmt: skip

    # -- bodies and the load hand-off
    def body(self, fetch_id: int) -> bytes:
        """The body bytes of a FETCHED or NON_HTML fetch; KeyError if it has none."""
        rows = self._rows(schema.BODY, {"fetch_id": fetch_id})
        if not rows:
            raise KeyError(f"fetch {fetch_id} has no archived body")
        return zlib.decompress(rows[0]["body"])

    def unloaded(self, source: str | None = None) -> list[ArchivedFetch]:
        """Newest FETCHED fetch per URL that the warehouse has not committed, oldest first."""
        return [_archived_fetch(row) for row in self._rows(schema.UNLOADED, {"source": source})]

    def mark_loaded(self, fetch_ids: Iterable[int], run_id: str) -> int:
        """Record that the warehouse committed these fetches in `run_id` (their links are
        loaded in the frontier once their newest body is); return fetch rows changed."""
        at = _iso(datetime.now(UTC))
        marks = [{"fetch_id": fetch_id, "run_id": run_id, "at": at} for fetch_id in fetch_ids]
        with self._db.write() as tx:
            changed = tx.executemany(schema.MARK_FETCH_LOADED, marks)
            tx.executemany(schema.MARK_LINK_LOADED, marks)
            return changed

    def latest_fetched(self, source: str | None = None) -> Iterator[ArchivedFetch]:
        """Newest FETCHED fetch per URL, streamed from one snapshot while the archive is written."""
        for row in self._db.stream(schema.LATEST_FETCHED, {"source": source}):
            yield _archived_fetch(row)

    def fetch_log(self, run_id: str) -> list[dict[str, Any]]:
        """All fetch rows of `run_id`, oldest first, shaped for the warehouse's fetch log."""
        return [_log_row(row) for row in self._rows(schema.FETCH_LOG_OF_RUN, {"run_id": run_id})]

    def fetch_log_after(self, fetch_id: int | None) -> list[dict[str, Any]]:
        """Fetch rows written after `fetch_id` (all of them for None), oldest first, shaped for
        the warehouse's fetch log: what it lacks when its newest row is `fetch_id`, whichever
        runs wrote them (ids grow with time, see the package docstring)."""
        rows = self._rows(schema.FETCH_LOG_AFTER, {"fetch_id": -1 if fetch_id is None else fetch_id})
        return [_log_row(row) for row in rows]

    # -- the warehouse these marks belong to
    def loaded_run_ids(self) -> set[str]:
        """The runs that loaded archived pages into a warehouse (their loaded marks)."""
        return {row["loaded_run_id"] for row in self._rows(schema.LOADED_RUN_IDS)}

    def forget_loads(self, run_ids: Iterable[str]) -> int:
        """The warehouse that `run_ids` loaded into is gone (replaced, new, or restored from
        before them): their pages are unloaded again, and their links fetched rather than
        loaded, so that the next load brings them back. Returns the fetch rows unmarked."""
        ids = list(run_ids)
        with self._db.write() as tx:
            forgotten = 0
            for chunk in _chunks(ids):
                where, params = schema.in_list("loaded_run_id", chunk, "r")
                forgotten += tx.execute(f"UPDATE fetches SET loaded_run_id = NULL WHERE {where}", params)
            if forgotten:
                tx.execute(schema.LINKS_UNLOADED, {"at": _iso(datetime.now(UTC))})
            return forgotten

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        with self._db.read() as session:
            return session.rows(sql, params)


def open_database(location: ArchiveLocation) -> Database:
    """The backend of `location`, open (not migrated)."""
    if isinstance(location, PostgresArchive):
        from tasks.crawl.archive import postgres

        return postgres.PostgresDatabase(location)
    return sqlite.SQLiteDatabase(location)


def _migrate(db: Database) -> None:
    """Bring the schema to the latest version under the write lock (two openers migrate
    once); a no-op when it is current."""
    with db.write() as tx:
        version = db.schema_version(tx)
        if version > schema.SCHEMA_VERSION:
            raise RuntimeError(f"archive schema version {version} is newer than this code ({schema.SCHEMA_VERSION})")
        for statements in schema.MIGRATIONS[version:]:
            for statement in statements:
                tx.execute(statement.format_map(db.column_types))
        if version != schema.SCHEMA_VERSION:
            db.set_schema_version(tx, schema.SCHEMA_VERSION)


def _prepare(run_id: str, source: str, result: FetchResult, gone_recheck_after: timedelta | None) -> _Recording:
    fetch = _fetch_row(run_id, source, result)
    body = result.body if result.outcome in _BODY_OUTCOMES else None
    return _Recording(fetch=fetch, page=_page_row(fetch, result.outcome),
                      move=_frontier_move(result, run_id, gone_recheck_after),
                      body=zlib.compress(body, 6) if body is not None else None)  # fmt: skip


def _write_recordings(tx: Session, recordings: Sequence[_Recording]) -> list[int]:
    """Write prepared fetch outcomes in order, inside a write transaction; return their ids.

    A fetch id is the time it is written in microseconds, or one more than the last id if the
    clock is behind it (the write lock makes the last id this transaction's to extend).
    Outcomes are written a round at a time, one statement per table for the round (a few
    round trips for a batch, not four per page); a round holds each URL once, so that the
    frontier's move of a URL reads that URL's fetches as one-by-one recording would leave them."""
    last = int(tx.rows(schema.LAST_FETCH_ID)[0]["last"])
    ids = []
    for batch in _rounds(recordings):
        fetches = []
        for recording in batch:
            last = max(time.time_ns() // 1000, last + 1)
            fetches.append(recording.fetch | {"fetch_id": last})
            ids.append(last)
        tx.executemany(schema.INSERT_BLOB, [{"body_sha256": r.fetch["body_sha256"], "size": r.fetch["size"],
                                             "body": r.body} for r in batch if r.body is not None])  # fmt: skip
        tx.executemany(schema.INSERT_FETCH, fetches)
        tx.executemany(schema.UPSERT_PAGE, [r.page for r in batch])
        tx.executemany(schema.UPDATE_ARTICLE, [r.move for r in batch])
    return ids


def _rounds(recordings: Sequence[_Recording]) -> Iterator[list[_Recording]]:
    """The recordings in order, cut before a URL the current round already holds."""
    batch: list[_Recording] = []
    urls: set[str] = set()
    for recording in recordings:
        if recording.fetch["url"] in urls:
            yield batch
            batch, urls = [], set()
        batch.append(recording)
        urls.add(recording.fetch["url"])
    if batch:
        yield batch


class _GroupCommit:
    """Group commit for `record`: the outcomes threads hand in while a transaction is being
    written wait for the next one, which the first of them writes for all; each caller
    returns once its own outcome is committed, with its fetch id. Many threads recording
    page by page (the crawl's fetch threads) then take the write lock and commit once per
    group rather than once per page. A group refused for its data (ValueError, TypeError or
    the backend's `data_errors`: a value the database will not take) is written again
    outcome by outcome, so that one bad outcome fails only its own caller; any other failure
    (an archive that cannot be reached or is locked, a full disk) fails the whole group at
    once, rather than once per outcome."""

    def __init__(self, write: Callable[[Sequence[_Recording]], list[int]],
                 data_errors: tuple[type[Exception], ...] = ()) -> None:  # fmt: skip
        self._write = write
        self._data_errors: tuple[type[Exception], ...] = (ValueError, TypeError, *data_errors)
        self._turn = threading.Condition()
        self._queue: list[_Waiting] = []
        self._writing = False

    def submit(self, recording: _Recording) -> int:
        waiting = _Waiting(recording)
        with self._turn:
            self._queue.append(waiting)
            while not waiting.done:
                if self._writing:
                    self._turn.wait()
                    continue
                self._writing, group, self._queue = True, self._queue, []
                self._turn.release()  # write without holding up those who queue meanwhile
                try:
                    self._write_group(group)
                finally:
                    self._turn.acquire()
                    self._writing = False
                    self._turn.notify_all()
        return waiting.fetch_id()

    def _write_group(self, group: list[_Waiting]) -> None:
        try:
            for waiting, fetch_id in zip(group, self._write([w.recording for w in group]), strict=True):
                waiting.succeed(fetch_id)
        except self._data_errors:
            for waiting in group:  # alone, each outcome succeeds or fails on its own
                try:
                    waiting.succeed(self._write([waiting.recording])[0])
                except Exception as exc:
                    waiting.fail(exc)
        except Exception as exc:
            for waiting in group:
                waiting.fail(exc)
        finally:
            for waiting in group:  # the writing thread was stopped (KeyboardInterrupt …): nobody waits forever
                if not waiting.done:
                    waiting.fail(ArchiveError("the thread writing this page's group of records was stopped"))


class _Waiting:
    """An outcome handed in for group commit, and what became of it."""

    def __init__(self, recording: _Recording) -> None:
        self.recording = recording
        self.done = False
        self._fetch_id: int | None = None
        self._error: BaseException | None = None

    def succeed(self, fetch_id: int) -> None:
        self._fetch_id, self.done = fetch_id, True

    def fail(self, error: BaseException) -> None:
        self._error, self.done = error, True

    def fetch_id(self) -> int:
        if self._error is not None:
            raise self._error
        assert self._fetch_id is not None  # done without an error: written
        return self._fetch_id


@dataclass(frozen=True)
class ArchiveProgress:
    """What the archive holds for a run that is stopping: what it kept, what is left."""

    fetched_by_run: int  # bodies this run archived
    loaded_by_run: int  # pages this run loaded into the warehouse
    unloaded: int  # newest bodies of any run the warehouse has not committed
    pending_links: int  # article links found and not fetched yet
    pending_listings: int  # listing pages queued and not read yet


def archive_progress(where: ArchiveLocation, run_id: str) -> ArchiveProgress | None:
    """ArchiveProgress of `run_id`, read on a connection of its own (the run's may be busy);
    None when there is no archive, or no readable one."""
    unreadable: tuple[type[Exception], ...] = (ArchiveError, OSError, *_driver_errors(where))
    try:
        if not where.exists():
            return None
        with open_reader(where) as session:
            counts = {name: int(session.rows(sql, {"run_id": run_id, "source": None})[0]["n"])
                      for name, sql in schema.PROGRESS.items()}  # fmt: skip
    except unreadable:  # a stop must not fail here
        return None
    return ArchiveProgress(**counts)


def _driver_errors(where: ArchiveLocation) -> tuple[type[Exception], ...]:
    """The errors of the driver of `where`'s backend."""
    if isinstance(where, PostgresArchive):
        from tasks.crawl.archive import postgres

        return postgres.DRIVER_ERRORS
    return sqlite.DRIVER_ERRORS


def open_reader(where: ArchiveLocation) -> AbstractContextManager[Session]:
    """A read session on a connection of its own."""
    if isinstance(where, PostgresArchive):
        from tasks.crawl.archive import postgres

        return postgres.reader(where)
    return sqlite.reader(where)


def check(where: str | Path | PostgresArchive) -> str:
    """Raise ArchiveDamagedError if the archive is damaged (ArchiveUnavailableError if its
    PostgreSQL cannot be reached); never creates one. Returns what was found."""
    location = as_location(where)
    if isinstance(location, PostgresArchive):
        from tasks.crawl.archive import postgres

        return postgres.check(location)
    return sqlite.check(location) if location.exists() else "no archive yet"


def set_aside(where: str | Path | PostgresArchive, now: datetime | None = None) -> list[str]:
    """Move a (damaged) archive out of the way so that the next run starts a new one: the
    SQLite file renamed, the PostgreSQL schema renamed. Returns the new names."""
    location = as_location(where)
    stamp = now or datetime.now(UTC)
    if isinstance(location, PostgresArchive):
        from tasks.crawl.archive import postgres

        return postgres.set_aside(location, stamp)
    return sqlite.set_aside(location, stamp)


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
        "url": row["url"], "source": row["source"], "fetched_at": row["fetched_at"], "outcome": row["outcome"],
        "body_sha256": row["body_sha256"],
        "checked_at": row["fetched_at"] if confirmed else None,
        "body_at": row["fetched_at"] if outcome in _BODY_OUTCOMES else None,
        "etag": row["etag"] if confirmed else None,
        "last_modified": row["last_modified"] if confirmed else None,
    }  # fmt: skip


def _log_row(row: Row) -> dict[str, Any]:
    """A fetches row with its JSON columns as dicts and fetched_at as a datetime."""
    log_row = dict(row)
    log_row["headers"] = json.loads(log_row.pop("headers_json"))
    log_row["retry_reasons"] = json.loads(log_row.pop("retry_reasons_json"))
    log_row["fetched_at"] = _parse(log_row["fetched_at"])
    return log_row


def _page_state(row: Row) -> PageState:
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


def _frontier_link(row: Row) -> FrontierLink:
    return FrontierLink(
        url=row["url"], source=row["source"], kind=row["kind"], state=row["state"], reason=row["reason"],
        failures=row["failures"], next_attempt_at=_parse(row["next_attempt_at"]),
        first_seen_at=datetime.fromisoformat(row["first_seen_at"]), first_seen_run_id=row["first_seen_run_id"],
    )  # fmt: skip


def _archived_fetch(row: Row) -> ArchivedFetch:
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


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start:start + _IN_CHUNK]
