"""Load extracted pages into the warehouse: a set-based merge keyed by 索引号.

One call is one transaction: either the whole batch is stored or nothing is (no
half-loaded report, ever). The merge follows dlt's delete-insert:

1. Validate in Python. A page that cannot be keyed (no key, `reject_reason` set, no
   extraction, duplicate child keys, a required field missing) or that now lands on its
   site's home page becomes a `rejects` row: no key is ever invented.
2. Stage the batch as Arrow tables (`stg_reports` one row per accepted page,
   `stg_sections|metrics|ranks`, `stg_rejects`, `load_context`): values never pass
   through SQL text.
3. `sql/keys.sql`: the key each page is stored under; a report keyed by a stand-in whose
   page now states a 索引号 takes it with its history (`warehouse.writer.history.rekey`).
   `sql/moves.sql`: a URL now stating another key moves its link there.
4. `sql/plan.sql`: the page that first stated a key represents it (its owner); compare with
   `reports` → new | changed (content_sha256 differs) | reextracted (same content, other
   extractor_version) | unchanged; another page with other content is a conflict.
5. `sql/report_versions.sql`, `sql/reports.sql` (reports new to the warehouse); for reports
   stored before, `sql/version_bodies.sql` (a changed report's replaced body moves to its
   version: the current body is stored once, in `reports`), then `sql/reports_replace.sql`;
   `sql/report_urls.sql`, `sql/conflicts.sql`; then per child table (tables.REPORT_CHILDREN)
   delete the touched reports' rows and insert the staged ones; the search index of the
   touched reports; new rejects; `sql/report_state.sql` (superseded, gone) for the reports
   whose links changed.
Unchanged reports write nothing at all, so a re-run over unchanged pages leaves every
data table byte-for-byte as it was. warehouse/writer/history.py says what the history columns mean.

A transaction may hold many batches (`StagedPages`): each batch is validated and appended
to the staged tables as it comes (Arrow, outside the transaction), and the merge runs once
over all of them, so its fixed costs (some forty statements, scans of whole tables) are
paid per transaction, not per batch. `load_pages` is one batch in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

import duckdb
import nanoarrow as na

from tasks import settings
from tasks.extract.keys import report_key
from tasks.records import Extraction, LoadOutcome, Metric, PageRecord, Rank, Report, Section
from warehouse.backend.connect import memory_limit, out_of_memory
from warehouse.backend.errors import WarehouseKeyError
from warehouse.backend.lake import claim, is_lake_connection, retrying
from warehouse.backend.staging import (Chunks, append_staged, arrow_fields, columns_to_arrow, drop_staged,
                                       main_columns, staged, staged_values, table_fields, to_arrow, utc_naive,
                                       utc_now)
from warehouse.backend.tx import in_transaction, one_row, transaction
from warehouse.schema.tables import REPORT_CHILDREN, TABLES
from warehouse.writer.history import redirected_home, refresh_gone, refresh_states, rekey, touched
from warehouse.writer.search import index_section_words, section_words

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent / "sql"

# Reason codes stored in rejects.reason, with the sentence stored in rejects.detail.
REJECT_DETAILS: dict[str, str] = {
    "missing_index_no": "The page states no 索引号 (index number), the key of a report; "
                        "it is quarantined rather than given an invented key.",
    "no_extraction": "The page was fetched but nothing was extracted from it.",
    "not_html": "The page is not an HTML document, so no report could be extracted.",
    "extract_error": "The extractor failed on this page.",
    "redirected_home": "The page now redirects to its site's home page: it was taken down. The home page "
                       "is no report; a report loaded from this URL is kept, marked gone (reports.gone_at).",
}
# Rows of batches held in Python before they are copied into the staged tables together
# (StagedPages): a few MB of Arrow columns, and some thirty batches in fewer statements.
HOLD_ROWS = 10_000
_REASON_CODE = re.compile(r"^(?P<code>[a-z][a-z0-9_]*)(?::\s*(?P<detail>.+))?$", re.S)
_CHILD_CLASSES: dict[str, type] = {"sections": Section, "metrics": Metric, "ranks": Rank}
# Per page besides its Report: the URL asked for (url is after redirects), the fetch, and the
# key its URL would give it if it stated no 索引号 (sql/keys.sql finds a stand-in report by it).
_PAGE_COLUMNS = {"page_idx": na.int64(), "fetched_at": na.timestamp("us"), "page_url": na.large_string(),
                 "fetch_id": na.int64(), "raw_sha256": na.large_string(), "fallback_key": na.large_string()}
_CONTEXT_COLUMNS = {"run_id": na.large_string(), "load_id": na.large_string(),
                    "observed_at": na.timestamp("us")}
# What each child table stages: its record's fields and the page it came from.
_CHILD_FIELDS: dict[str, dict[str, na.Schema]] = {
    table: arrow_fields(cls) | {"page_idx": na.int64()} for table, cls in _CHILD_CLASSES.items()}
# The search index's words of each staged section (sql/search_index.sql reads them as section_words).
_WORD_COLUMNS = {"page_idx": na.int64(), "section_id": na.large_string(), "n_terms": na.int64(),
                 "words": na.large_string()}

@dataclass
class _Batch:
    """The rows of one batch to stage, column by column, and the outcomes already decided
    in Python (rejections)."""

    reports: list[dict] = field(default_factory=list)
    children: dict[str, dict[str, list]] = field(
        default_factory=lambda: {table: {} for table in REPORT_CHILDREN})
    words: dict[str, list] = field(default_factory=lambda: {name: [] for name in _WORD_COLUMNS})
    rejects: list[dict] = field(default_factory=list)
    rejected: dict[int, LoadOutcome] = field(default_factory=dict)


def load_pages(con: duckdb.DuckDBPyConnection, run_id: str, pages: Sequence[PageRecord],
               observed_at: datetime, *,
               fetch_log_rows: Sequence[Mapping[str, Any]] | None = None) -> list[LoadOutcome]:
    """Merge a batch of pages in one transaction; return one LoadOutcome per page, in order.

    `fetch_log_rows`, if given, are recorded in the same transaction (see record_fetch_log).
    """
    with StagedPages(con, run_id, observed_at) as load:
        load.add(pages)
        return load.commit(fetch_log_rows=fetch_log_rows)


class StagedPages:
    """Pages staged for one load transaction: `add` batches as they come, `commit` merges
    them all in one transaction (the module docstring's steps 3-5) and returns one
    LoadOutcome per page, in the order added.

    Staging happens outside the transaction, in temporary tables: a batch's pages are
    validated and turned into Arrow columns at once, and only those columns are kept (not
    the pages). They are held in Python until about `HOLD_ROWS` rows have come, then
    copied into the staged tables in one statement a table, so the transaction's size is
    bounded by DuckDB's memory budget, which spills, rather than by the Python heap. A
    context manager: leaving the block drops whatever is still staged (a merge that failed
    rolled back; nothing was written).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str, observed_at: datetime) -> None:
        self.con, self.run_id = con, run_id
        self.observed, self.started, self.load_id = utc_naive(observed_at), utc_now(), new_load_id()
        self.required = _required_columns(con)
        self.reject_fields = table_fields(con, "rejects")
        self.rows = 0  # staged rows of reports and their children: the transaction's size
        self._pages: list[tuple[str, str]] = []  # (url, source) of each staged page, by page_idx
        self._rejected: dict[int, LoadOutcome] = {}
        self._tables: list[str] = []  # staged tables created so far
        self._held: dict[str, Chunks] = {}  # batches not copied into them yet
        self._held_rows = 0

    def __len__(self) -> int:
        return len(self._pages)

    def __enter__(self) -> StagedPages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def add(self, pages: Sequence[PageRecord]) -> None:
        """Validate a batch and append its rows to the staged tables."""
        batch = _prepare(pages, self.run_id, self.load_id, self.observed, self.required, first_idx=len(self._pages))
        for name, table in _stage_tables(batch, self.reject_fields).items():
            self._held.setdefault(name, Chunks(table.schema)).append(table)
        self._pages += [(page.url, page.source) for page in pages]
        self._rejected.update(batch.rejected)
        rows = len(batch.reports) + sum(len(next(iter(columns.values()), ())) for columns in batch.children.values())
        self.rows += rows
        self._held_rows += rows
        if self._held_rows >= HOLD_ROWS:
            self._stage_held()

    def commit(self, *, fetch_log_rows: Sequence[Mapping[str, Any]] | None = None) -> list[LoadOutcome]:
        """Merge what is staged in one transaction (joining the caller's, if one is open);
        then drop the staged tables. Raises what DuckDB raises, after the rollback."""
        context = {"run_id": self.run_id, "load_id": self.load_id, "observed_at": self.observed}

        # On a lake (warehouse/backend/lake.py): a transaction that writes keyed rows claims, so that
        # two of them never commit side by side, and one that loses to another writer's commit
        # is merged again from the staged tables (they live outside the transaction).
        self._stage_held()

        def attempt() -> list[LoadOutcome]:
            with transaction(self.con), staged(self.con, {"load_context": to_arrow([context], _CONTEXT_COLUMNS)}):
                outcomes = _merge(self.con, self._pages, self._rejected) if self._pages else []
                if any(o.status != "unchanged" or o.reason == "reextracted" for o in outcomes):
                    claim(self.con)
                _record_load(self.con, context, self.started, outcomes)
                if fetch_log_rows:
                    record_fetch_log(self.con, fetch_log_rows, run_id=self.run_id)
            return outcomes

        outcomes = retrying(self.con, attempt, what=f"load {self.load_id}")
        self.discard()
        log.info("load %s (run %s): %s", self.load_id, self.run_id,
                 dict(Counter(o.reason or o.status for o in outcomes)))
        return outcomes

    def discard(self) -> None:
        """Drop what is staged (after a commit, or instead of one)."""
        drop_staged(self.con, self._tables)
        self._tables, self._held, self._held_rows = [], {}, 0

    def _stage_held(self) -> None:
        """Copy the batches held in Python into the staged tables: one statement a table for
        many batches (a statement each cost more than the copy). Under the staging budget
        (settings.WAREHOUSE_STAGING_MEMORY_LIMIT: the staged rows spill rather than stay in
        memory beside the extraction); a table that does not fit it even so is copied under
        the writer's budget. Inside a caller's transaction a refused copy would abort it, so
        there the writer's budget is kept."""
        held = list(self._held.items())
        inside = in_transaction(self.con)
        copied = 0
        try:
            with nullcontext() if inside else memory_limit(self.con, settings.WAREHOUSE_STAGING_MEMORY_LIMIT):
                for name, chunks in held:
                    self._append(name, chunks)
                    copied += 1
        except duckdb.Error as exc:  # a refused copy wrote nothing (autocommit)
            if inside or not out_of_memory(exc):
                raise
            for name, chunks in held[copied:]:
                self._append(name, chunks)
        self._held, self._held_rows = {}, 0

    def _append(self, name: str, chunks: Chunks) -> None:
        append_staged(self.con, name, chunks, create=name not in self._tables)
        if name not in self._tables:
            self._tables.append(name)


def new_load_id() -> str:
    """Time-sortable unique id of one load transaction."""
    return f"{utc_now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"


# --- 1. validate and shape rows (Python) -------------------------------------------------
def _prepare(pages: Sequence[PageRecord], run_id: str, load_id: str, observed: datetime,
             required: Mapping[str, set[str]], first_idx: int = 0) -> _Batch:
    batch = _Batch()
    for idx, page in enumerate(pages, start=first_idx):
        rejection = _rejection(page, required)
        if rejection is None:
            _add_report(batch, idx, page)
            continue
        reason, detail = rejection
        batch.rejects.append({
            "run_id": run_id, "source": page.source, "url": page.url,
            "fetch_id": page.fetch_id, "raw_sha256": page.raw_sha256, "reason": reason,
            "detail": detail, "observed_at": observed, "final_url": page.final_url,
            "load_id": load_id})
        key = _key(page.extraction.report.index_no) if page.extraction else None
        batch.rejected[idx] = LoadOutcome(page.url, page.source, key, "rejected", reason)
    return batch


def _rejection(page: PageRecord, required: Mapping[str, set[str]]) -> tuple[str, str] | None:
    """(reason code, sentence) if the page cannot become a report, else None."""
    if redirected_home(page.url, page.final_url):
        return "redirected_home", f"{page.url} now redirects to {page.final_url}. " + REJECT_DETAILS["redirected_home"]
    if page.reject_reason:
        return _parse_reject_reason(page.reject_reason)
    if page.extraction is None:
        return "no_extraction", REJECT_DETAILS["no_extraction"]
    if not _key(page.extraction.report.index_no):
        return "missing_index_no", REJECT_DETAILS["missing_index_no"]
    problem = _extraction_problem(page.extraction, required)
    return ("invalid_extraction", problem) if problem else None


def _parse_reject_reason(text: str) -> tuple[str, str]:
    """'code' or 'code: sentence' → (code, sentence); free text → ('rejected', text)."""
    match = _REASON_CODE.match(text.strip())
    if not match:
        return "rejected", text.strip()
    code = match["code"]
    return code, match["detail"] or REJECT_DETAILS.get(code, f"The page was rejected ({code}).")


def _extraction_problem(extraction: Extraction, required: Mapping[str, set[str]]) -> str | None:
    """A sentence naming what makes the extraction unloadable, or None.

    The usual page passes both checks in C (a set of the keys, attrgetter over the rows);
    the sentence is worked out only for a page that fails one."""
    for table in REPORT_CHILDREN:
        items = getattr(extraction, table)
        if not items:
            continue
        key = TABLES[table].key[1:]  # the key within one report (index_no comes from it)
        if len(set(map(attrgetter(*key), items))) < len(items):
            counts = Counter(tuple(getattr(item, col) for col in key) for item in items)
            duplicates = [k for k, n in counts.items() if n > 1]
            return (f"The extraction lists {table} with the same {', '.join(key)} more than "
                    f"once ({duplicates[:3]}), so its rows cannot be keyed.")
        if any(None in map(attrgetter(name), items) for name in required[table]):
            for item in items:
                missing = [name for name in required[table] if getattr(item, name) is None]
                if missing:
                    return f"A row of {table} has no {', '.join(missing)}, which is required."
    return None


def _required_columns(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """NOT NULL columns of each child table that the extraction fills (the DDL decides)."""
    required: dict[str, set[str]] = {table: set() for table in REPORT_CHILDREN}
    for table, column, _, nullable in main_columns(con):
        if table in required and not nullable:
            required[table].add(column)
    return {t: cols - {"index_no", "load_id"} for t, cols in required.items()}


def _key(index_no: str | None) -> str | None:
    """The report key: 索引号 trimmed; blank is no key."""
    return (index_no.strip() or None) if index_no else None


def _add_report(batch: _Batch, idx: int, page: PageRecord) -> None:
    extraction = page.extraction
    key = _key(extraction.report.index_no) if extraction else None
    if extraction is None or key is None:  # _rejection turns such pages away first
        raise ValueError(f"{page.url}: a page without an extraction or 索引号 cannot be loaded")
    report = extraction.report
    row = dict(vars(report))  # the dataclass's fields (records are plain dataclasses)
    url = report.url or page.final_url or page.url
    row.update(
        page_idx=idx,
        index_no=key,
        fetched_at=page.fetched_at,
        source=report.source or page.source,
        url=url,
        content_sha256=report.content_sha256 or _sha256(report.body_text or ""),
        page_url=page.url, fetch_id=page.fetch_id, raw_sha256=page.raw_sha256,
        fallback_key=_fallback_key(url) if report.key_kind == "index_no" else None,
    )
    batch.reports.append(row)
    for table in REPORT_CHILDREN:  # column by column: no dict per row
        _extend_columns(batch.children[table], getattr(extraction, table), _CHILD_FIELDS[table], idx, key)
    words = page.search_words
    if words is None or len(words) != len(extraction.sections):  # not marked where it was extracted
        words = section_words(extraction.sections)
    batch.words["page_idx"] += [idx] * len(words)
    batch.words["section_id"] += [section.section_id for section in extraction.sections]
    batch.words["words"] += [text for text, _ in words]
    batch.words["n_terms"] += [n for _, n in words]


def _extend_columns(columns: dict[str, list], items: Sequence[Any], names: Iterable[str], idx: int,
                    key: str) -> None:  # fmt: skip
    """Append the rows of one report's children to `columns`; every row carries the
    report's page_idx and key (children inherit their report's key)."""
    for name in names:
        column = columns.setdefault(name, [])
        if name == "page_idx":
            column += [idx] * len(items)
        elif name == "index_no":
            column += [key] * len(items)
        else:
            column += map(attrgetter(name), items)


def _fallback_key(url: str) -> str | None:
    """The key a page at `url` gets when it states no 索引号 (its document id or URL)."""
    key = report_key(None, url)
    return key.key if key else None


# --- 2. stage ----------------------------------------------------------------------------
def _stage_tables(batch: _Batch, reject_fields: dict[str, na.Schema]) -> dict[str, na.Array]:
    tables = {
        "stg_reports": to_arrow(batch.reports, arrow_fields(Report) | _PAGE_COLUMNS),
        "stg_rejects": to_arrow(batch.rejects, reject_fields),
        "stg_section_words": columns_to_arrow(batch.words, _WORD_COLUMNS),
    }
    for table, columns in batch.children.items():
        tables[f"stg_{table}"] = columns_to_arrow(columns, _CHILD_FIELDS[table])
    return tables


# --- 3.-5. merge (SQL) -----------------------------------------------------------------
_PLAN_VIEWS = ("report_rows", "replaced_versions", "load_plan", "conflicting", "other_pages")
_PLAN_TABLES = ("rekeys", "page_keys", "batch_pages", "page_plan", "touched_reports", "replaced_reports")


def _merge(con: duckdb.DuckDBPyConnection, pages: Sequence[tuple[str, str]],
           rejected: Mapping[int, LoadOutcome]) -> list[LoadOutcome]:  # fmt: skip
    (new_keys,) = one_row(con, "select count(*) from stg_reports anti join reports using (index_no)")
    _run_sql(con, "keys" if new_keys else "keys_known")
    rekey(con)
    _run_sql(con, "moves")
    if touched(con, "history_touched"):  # steps that write nothing in the usual batch run only when needed
        _run_sql(con, "relink")
    for step in ("plan", "report_versions", "reports"):
        _run_sql(con, step)
    replaced = "replaced_reports" if touched(con, "replaced_reports") else None
    if replaced:
        if touched(con, "replaced_versions"):
            _run_sql(con, "version_bodies")  # before sql/reports_replace.sql overwrites the bodies it moves
        _run_sql(con, "reports_replace")
    _run_sql(con, "report_urls")
    if touched(con, "conflicting"):
        _run_sql(con, "conflicts")
    for table in REPORT_CHILDREN:
        _replace_children(con, table, replaced)
    _index_sections(con, replaced)
    insert_new(con, "rejects", "stg_rejects")
    refresh_states(con)
    outcomes = _outcomes(con, pages, rejected)
    con.execute("".join(f"drop view {name};" for name in _PLAN_VIEWS)
                + "".join(f"drop table {name};" for name in _PLAN_TABLES))
    return outcomes


def _run_sql(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute((SQL_DIR / f"{name}.sql").read_text(encoding="utf-8"))


def _replace_children(con: duckdb.DuckDBPyConnection, table: str, replaced: str | None) -> None:
    """Delete the rows of `table` of the reports in the temp table `replaced` (the touched
    reports stored before; None: there are none, and the delete, a scan of the whole table,
    is left out), then insert the touched reports' staged rows."""
    spec = TABLES[table]
    if spec.disposition != "replace_children" or spec.key[0] != "index_no":
        raise ValueError(f"{table} is not a child table keyed by index_no: {spec}")
    if replaced is not None:
        con.execute(f"delete from {table} where index_no in (select index_no from {replaced})")
    con.execute(f"""
        insert into {table} by name
        select c.* exclude (page_idx, index_no), p.index_no, ctx.load_id
        from stg_{table} as c
        join load_plan as p on p.page_idx = c.page_idx and p.action <> 'unchanged'
        cross join load_context as ctx""")


def _index_sections(con: duckdb.DuckDBPyConnection, replaced: str | None) -> None:
    """The search index of the touched reports: their sections' words, staged with the
    pages, replace what it held for them (warehouse.writer.search.index_section_words)."""
    index_section_words(con, """(
        select p.index_no, w.section_id, w.n_terms, w.words
        from stg_section_words as w
        join load_plan as p on p.page_idx = w.page_idx and p.action <> 'unchanged')""", replaced=replaced)


def insert_new(con: duckdb.DuckDBPyConnection, table: str, staged_name: str) -> int:
    """insert_only disposition: add staged rows whose key is not stored (nor repeated)."""
    spec = TABLES[table]
    if spec.disposition != "insert_only":
        raise ValueError(f"{table} is {spec.disposition}, not insert_only")
    key = ", ".join(spec.key)
    (inserted,) = one_row(con, f"""
        insert into {table} by name
        select * exclude (_nth) from (
            select s.*, row_number() over (partition by {key}) as _nth
            from {staged_name} as s anti join {table} using ({key}))
        where _nth = 1""")
    return inserted


def _outcomes(con: duckdb.DuckDBPyConnection, pages: Sequence[tuple[str, str]],
              rejected: Mapping[int, LoadOutcome]) -> list[LoadOutcome]:  # fmt: skip
    outcomes = dict(rejected)
    for idx, index_no, status, reason in con.execute(
            (SQL_DIR / "outcomes.sql").read_text(encoding="utf-8")).fetchall():
        url, source = pages[idx]
        outcomes[idx] = LoadOutcome(url, source, index_no, status, reason)
    return [outcomes[i] for i in range(len(pages))]


def _record_load(con: duckdb.DuckDBPyConnection, context: dict, started: datetime,
                 outcomes: list[LoadOutcome]) -> None:
    counts = Counter(o.status for o in outcomes)
    reextracted = sum(o.reason == "reextracted" for o in outcomes)
    with staged_values(con, load_id=context["load_id"], run_id=context["run_id"], started_at=started,
                       finished_at=utc_now(), pages=len(outcomes), new=counts["new"],
                       changed=counts["changed"], unchanged=counts["unchanged"],
                       reextracted=reextracted, rejected=counts["rejected"]):  # fmt: skip
        con.execute("insert into loads by name select * from args")


def checkpoint(con: duckdb.DuckDBPyConnection) -> None:
    """Write what the load's transactions committed into the main file, once, after the
    last of them (a DuckDB file; a lake has its own maintenance, warehouse/backend/lake.py).
    Committed data is durable before this (DuckDB's WAL, or written at commit when it is
    large); this only compacts it, so that the checkpoint's cost is counted in the load
    stage rather than paid by the snapshot that follows."""
    if not is_lake_connection(con):
        con.execute("checkpoint")


# --- fetch log ---------------------------------------------------------------------------
def record_fetch_log(con: duckdb.DuckDBPyConnection, rows: Iterable[Mapping[str, Any]], *,
                     run_id: str | None = None) -> int:
    """Copy crawler fetch-log rows into `fetch_log`; rows whose fetch_id is stored are skipped.
    Then the links those rows are about are gone or answering again, and their reports too
    (warehouse.writer.history.refresh_gone: 404/410, a redirect to the home page).

    Joins the caller's transaction if there is one. Returns the number of rows inserted.
    """
    columns = table_fields(con, "fetch_log")
    prepared = [_fetch_log_row(row, columns, run_id) for row in rows]
    keyless = [row.get("url") for row in prepared if row.get("fetch_id") is None]
    if keyless:
        raise WarehouseKeyError(
            f"{len(keyless)} fetch-log rows have no fetch_id (their key), e.g. {keyless[:3]}")
    if not prepared:
        return 0
    def attempt() -> int:  # on a lake: claimed and retried as StagedPages.commit says
        with transaction(con), staged(con, {"stg_fetch_log": to_arrow(prepared, columns)}):
            inserted = insert_new(con, "fetch_log", "stg_fetch_log")
            if inserted:
                claim(con)
            refresh_gone(con)
            return inserted

    return retrying(con, attempt, what="recording the fetch log")


def _fetch_log_row(row: Mapping[str, Any], columns: Iterable[str], run_id: str | None) -> dict:
    out = {name: row.get(name) for name in columns}
    out["run_id"] = out["run_id"] or run_id
    if out["outcome"] is not None:
        out["outcome"] = str(out["outcome"])  # FetchOutcome is a StrEnum
    if isinstance(out["retry_reasons"], Mapping):
        out["retry_reasons"] = json.dumps(out["retry_reasons"], ensure_ascii=False)
    if isinstance(out["fetched_at"], str):
        out["fetched_at"] = datetime.fromisoformat(out["fetched_at"])
    return out


# --- summaries ---------------------------------------------------------------------------
def count_outcomes(outcomes: Iterable[LoadOutcome]) -> dict[str, Counter]:
    """Outcome statuses per source ({"tiantai": Counter(new=3, unchanged=1)}), for run_sources."""
    per_source: dict[str, Counter] = {}
    for outcome in outcomes:
        per_source.setdefault(outcome.source, Counter())[outcome.status] += 1
    return per_source


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
