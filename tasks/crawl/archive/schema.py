"""The archive's SQL, written once for both backends (dialect.py says what that allows).

The tables are described in the package docstring. Column types that differ between
SQLite and PostgreSQL are placeholders in the migrations, filled from the backend's
`column_types`:

- `{fetch_id}`: the fetch log's key, microseconds since the epoch. SQLite's `INTEGER
  PRIMARY KEY` (the rowid itself, 64 bits); PostgreSQL's `BIGINT` (its `INTEGER` is 32).
- `{real}`: a float. `REAL` is 64 bits in SQLite, 32 in PostgreSQL (`DOUBLE PRECISION`).
- `{blob}`: bytes. `BLOB` / `BYTEA`.
- `{rowid}`: the column the frontier is ordered by (the order links were found in).
  SQLite numbers rows itself (`rowid`); PostgreSQL gets an identity column of that name.
"""

from __future__ import annotations

import re

# MIGRATIONS[n] moves the schema from version n to n + 1; append, never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,  -- bytes before compression
            body {blob} NOT NULL      -- zlib
        )""",
        """CREATE TABLE fetches (
            fetch_id {fetch_id} PRIMARY KEY,
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
            elapsed_s {real} NOT NULL,
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
        """CREATE TABLE frontier ({rowid}
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
SCHEMA_VERSION = len(MIGRATIONS)


def tables_at(version: int) -> frozenset[str]:
    """The tables an archive at schema `version` holds, read off the migrations."""
    statements = [s for step in MIGRATIONS[:version] for s in step]
    return frozenset(m.group(1) for s in statements if (m := re.match(r"\s*CREATE TABLE (\w+)", s)))


# --- recording a fetch -------------------------------------------------------------------
INSERT_BLOB = "INSERT INTO blobs (sha256, size, body) VALUES (:body_sha256, :size, :body) ON CONFLICT (sha256) DO NOTHING"
LAST_FETCH_ID = "SELECT coalesce(max(fetch_id), 0) AS last FROM fetches"
INSERT_FETCH = """
INSERT INTO fetches (fetch_id, run_id, source, url, final_url, outcome, status, reason, content_type,
    headers_json, fetched_at, elapsed_s, attempts, retry_reasons_json, etag, last_modified,
    sha256, size, body_sha256)
VALUES (:fetch_id, :run_id, :source, :url, :final_url, :outcome, :status, :reason, :content_type,
    :headers_json, :fetched_at, :elapsed_s, :attempts, :retry_reasons_json, :etag, :last_modified,
    :sha256, :size, :body_sha256)
"""
# A new body replaces the validators; a 304 keeps the old ones unless it sends new ones.
UPSERT_PAGE = """
INSERT INTO pages (url, source, first_seen_at, last_attempt_at, last_checked_at, last_fetched_at,
    etag, last_modified, last_sha256, last_outcome)
VALUES (:url, :source, :fetched_at, :fetched_at, :checked_at, :body_at,
    :etag, :last_modified, :body_sha256, :outcome)
ON CONFLICT (url) DO UPDATE SET
    last_attempt_at = excluded.last_attempt_at,
    last_checked_at = coalesce(excluded.last_checked_at, pages.last_checked_at),
    last_fetched_at = coalesce(excluded.last_fetched_at, pages.last_fetched_at),
    etag = CASE WHEN excluded.last_fetched_at IS NOT NULL THEN excluded.etag
                WHEN excluded.last_checked_at IS NOT NULL THEN coalesce(excluded.etag, pages.etag)
                ELSE pages.etag END,
    last_modified = CASE WHEN excluded.last_fetched_at IS NOT NULL THEN excluded.last_modified
                WHEN excluded.last_checked_at IS NOT NULL THEN coalesce(excluded.last_modified, pages.last_modified)
                ELSE pages.last_modified END,
    last_sha256 = coalesce(excluded.last_sha256, pages.last_sha256),
    last_outcome = excluded.last_outcome
"""

# --- reading the fetch log ---------------------------------------------------------------
FETCH_COLUMNS = ("fetch_id, run_id, source, url, final_url, outcome, status, content_type, "
                 "fetched_at, sha256, size, loaded_run_id")  # fmt: skip
# Only the newest FETCHED row of a URL counts: an older unloaded one is superseded and
# must not overwrite newer data in the warehouse. (CAST: PostgreSQL must know the type of
# a parameter it is only asked whether it is NULL.)
UNLOADED = f"""
SELECT {FETCH_COLUMNS} FROM fetches AS f
WHERE f.outcome = 'fetched' AND f.loaded_run_id IS NULL AND (CAST(:source AS TEXT) IS NULL OR f.source = :source)
  AND f.fetch_id = (SELECT max(fetch_id) FROM fetches WHERE url = f.url AND outcome = 'fetched')
ORDER BY f.fetch_id
"""
LATEST_FETCHED = f"""
SELECT {FETCH_COLUMNS} FROM fetches
WHERE fetch_id IN (SELECT max(fetch_id) FROM fetches WHERE outcome = 'fetched'
                   AND (CAST(:source AS TEXT) IS NULL OR source = :source) GROUP BY url)
ORDER BY fetch_id
"""
BODY = "SELECT b.body FROM fetches AS f JOIN blobs AS b ON b.sha256 = f.body_sha256 WHERE f.fetch_id = :fetch_id"
FETCH_LOG_OF_RUN = "SELECT * FROM fetches WHERE run_id = :run_id ORDER BY fetch_id"
FETCH_LOG_AFTER = "SELECT * FROM fetches WHERE fetch_id > :fetch_id ORDER BY fetch_id"
MARK_FETCH_LOADED = "UPDATE fetches SET loaded_run_id = :run_id WHERE fetch_id = :fetch_id AND loaded_run_id IS NULL"
LOADED_RUN_IDS = "SELECT DISTINCT loaded_run_id FROM fetches WHERE loaded_run_id IS NOT NULL"

# --- crawl state per URL -----------------------------------------------------------------
KNOWN_URLS = "SELECT url FROM pages WHERE source = :source AND last_fetched_at IS NOT NULL"
DUE_FOR_REVALIDATION = """
SELECT * FROM pages AS p WHERE source = :source AND last_fetched_at IS NOT NULL AND last_checked_at < :cutoff
  AND NOT EXISTS (SELECT 1 FROM frontier AS f WHERE f.url = p.url AND f.state IN ('gone', 'pending'))
ORDER BY last_checked_at, url
"""

# --- the frontier ------------------------------------------------------------------------
# A fetch moves an article link to the state its outcome means. A 304 keeps the link
# 'fetched' while its newest body waits for the warehouse, else makes it 'loaded'.
UPDATE_ARTICLE = """
UPDATE frontier SET
    state = coalesce(:state, CASE WHEN (SELECT f.loaded_run_id IS NULL FROM fetches f
                                        WHERE f.url = :url AND f.outcome = 'fetched'
                                        ORDER BY f.fetch_id DESC LIMIT 1) THEN 'fetched' ELSE 'loaded' END),
    reason = :reason, next_attempt_at = :next_attempt_at,
    failures = CASE WHEN :failed THEN failures + 1 ELSE 0 END,
    updated_at = :at, last_run_id = :run_id
WHERE url = :url AND kind = 'article'
"""
ADD_LINK = """
INSERT INTO frontier (url, source, kind, state, first_seen_at, first_seen_run_id, updated_at, last_run_id,
    found_on, title, listed_date)
VALUES (:url, :source, 'article', 'pending', :at, :run_id, :at, :run_id, :found_on, :title, :listed_date)
ON CONFLICT (url) DO NOTHING
"""
LISTING_READ = """
INSERT INTO frontier (url, source, kind, state, first_seen_at, first_seen_run_id, updated_at, last_run_id,
    last_read_at, links_found, declared_records)
VALUES (:url, :source, 'listing', 'read', :at, :run_id, :at, :run_id, :at, :links_found, :declared_records)
ON CONFLICT (url) DO UPDATE SET
    state = 'read', reason = NULL, failures = 0, next_attempt_at = NULL, updated_at = :at,
    last_run_id = :run_id, last_read_at = :at, links_found = :links_found, declared_records = :declared_records
WHERE frontier.kind = 'listing'
"""
# A listing page a walk queued: pending until it is read (an interrupted walk leaves it so).
# A page this run already read stays read (page 2 links back to page 1 as 首页).
LISTING_QUEUED = """
INSERT INTO frontier (url, source, kind, state, first_seen_at, first_seen_run_id, updated_at, last_run_id, found_on)
VALUES (:url, :source, 'listing', 'pending', :at, :run_id, :at, :run_id, :found_on)
ON CONFLICT (url) DO UPDATE SET state = 'pending', updated_at = :at, last_run_id = :run_id
WHERE frontier.kind = 'listing'
  AND (frontier.state = 'skipped' OR (frontier.state = 'read' AND frontier.last_run_id IS DISTINCT FROM :run_id))
"""
LISTING_FAILED = """
INSERT INTO frontier (url, source, kind, state, reason, failures, next_attempt_at, first_seen_at,
    first_seen_run_id, updated_at, last_run_id)
VALUES (:url, :source, 'listing', :state, :reason, 1, :next_attempt_at, :at, :run_id, :at, :run_id)
ON CONFLICT (url) DO UPDATE SET state = :state, reason = :reason, failures = frontier.failures + 1,
    next_attempt_at = :next_attempt_at, updated_at = :at, last_run_id = :run_id
WHERE frontier.kind = 'listing'
"""
# A queued page the walk did not need (the pages before it held only known links).
LISTING_NOT_NEEDED = """
UPDATE frontier SET state = CASE WHEN last_read_at IS NULL THEN 'skipped' ELSE 'read' END,
    reason = CASE WHEN last_read_at IS NULL THEN 'not read: the listing pages before it held only known links' END,
    updated_at = :at, last_run_id = :run_id
WHERE url = :url AND kind = 'listing' AND state = 'pending'
"""
LISTING_LEFT = """
UPDATE frontier SET state = 'pending', reason = 'not read yet: the page budget (max_listing_pages) ran out',
    updated_at = :at, last_run_id = :run_id
WHERE url = :url AND kind = 'listing' AND state IN ('pending', 'read', 'skipped')
"""
WALK_DONE = """
INSERT INTO listing_walks (source, last_run_id, last_walk_at, complete, stop_reason, last_complete_at)
VALUES (:source, :run_id, :at, :complete, :stop_reason, CASE WHEN :complete = 1 THEN :at END)
ON CONFLICT (source) DO UPDATE SET last_run_id = :run_id, last_walk_at = :at, complete = :complete,
    stop_reason = :stop_reason,
    last_complete_at = CASE WHEN :complete = 1 THEN :at ELSE listing_walks.last_complete_at END
"""
WALKED_BEFORE = "SELECT 1 AS walked FROM listing_walks WHERE source = :source"
# Due: never fetched; or failed, gone or skipped with its next attempt reached. Links earlier
# runs left come first (rowid is the order links were found in).
DUE_LINKS = """
SELECT url FROM frontier
WHERE source = :source AND kind = 'article'
  AND (state = 'pending' OR (state IN ('failed', 'gone', 'skipped') AND next_attempt_at <= :now))
ORDER BY state <> 'pending', rowid
"""
LISTING_RESUME = """
SELECT url FROM frontier
WHERE source = :source AND kind = 'listing'
  AND (state = 'pending' OR (state IN ('failed', 'gone') AND next_attempt_at <= :now))
ORDER BY rowid
"""
LISTING_NOT_DUE = """
SELECT url FROM frontier WHERE source = :source AND kind = 'listing' AND state = 'gone' AND next_attempt_at > :now
"""
ARTICLE_URLS = "SELECT url FROM frontier WHERE kind = 'article'"
FRONTIER = """
SELECT * FROM frontier
WHERE (CAST(:source AS TEXT) IS NULL OR source = :source) AND (CAST(:kind AS TEXT) IS NULL OR kind = :kind)
ORDER BY rowid
"""
LINKS_KNOWN = "SELECT count(*) AS n FROM frontier WHERE source = :source AND kind = 'article'"
MARK_LINK_LOADED = """
UPDATE frontier SET state = 'loaded', updated_at = :at, last_run_id = :run_id
WHERE kind = 'article' AND state = 'fetched'
  AND url = (SELECT url FROM fetches WHERE fetch_id = :fetch_id)
  AND (SELECT f.loaded_run_id FROM fetches f WHERE f.url = frontier.url AND f.outcome = 'fetched'
       ORDER BY f.fetch_id DESC LIMIT 1) IS NOT NULL
"""
# The newest body of a link is no longer loaded (its run's warehouse is gone): fetched again.
LINKS_UNLOADED = """
UPDATE frontier SET state = 'fetched', updated_at = :at
WHERE kind = 'article' AND state = 'loaded'
  AND EXISTS (SELECT 1 FROM fetches f WHERE f.url = frontier.url AND f.outcome = 'fetched')
  AND (SELECT f.loaded_run_id FROM fetches f WHERE f.url = frontier.url AND f.outcome = 'fetched'
       ORDER BY f.fetch_id DESC LIMIT 1) IS NULL
"""

# --- what a stopping run kept (flows/interrupt.py) ---------------------------------------
PROGRESS = {
    "fetched_by_run": "SELECT count(*) AS n FROM fetches WHERE run_id = :run_id AND outcome = 'fetched'",
    "loaded_by_run": "SELECT count(*) AS n FROM fetches WHERE loaded_run_id = :run_id",
    "unloaded": f"SELECT count(*) AS n FROM ({UNLOADED}) AS unloaded",
    "pending_links": "SELECT count(*) AS n FROM frontier WHERE kind = 'article' AND state = 'pending'",
    "pending_listings": "SELECT count(*) AS n FROM frontier WHERE kind = 'listing' AND state = 'pending'",
}


def in_list(column: str, values: list[str], name: str = "v") -> tuple[str, dict[str, str]]:
    """`column IN (:v0, :v1, …)` and its parameters: named parameters on both backends."""
    params = {f"{name}{n}": value for n, value in enumerate(values)}
    return f"{column} IN ({', '.join(':' + key for key in params)})", params
