"""What a report's history says beyond its versions: rekeyed, superseded, gone, in conflict.

Pages change under a report in ways a content hash does not see, and each is decided in
set-based SQL inside the transaction that sees it (schema/migrations/0012_history.sql has the
columns and what they mean):

- **Rekeyed** (sql/keys.sql, `rekey`): a report keyed by a stand-in (its CMS document id or
  canonical URL, `key_kind`) whose page now states a 索引号 takes that key, with its whole
  history: every table with an `index_no` column, found in the catalog, so a table added
  later is carried too; `former_key` keeps the stand-in. A page that stops printing its
  索引号 stays the report its URL serves.
- **Superseded** (sql/moves.sql, sql/relink.sql, sql/report_state.sql): a URL whose page now states another
  key moves its link there (`report_urls.moved_to`); a report all of whose URLs moved is
  superseded by the key its last URL states. It keeps its rows and links; views, checks and
  the export count current reports only.
- **Conflicts** (sql/plan.sql, sql/conflicts.sql): a second page stating a key with other
  content never becomes a version: the page that stated it first keeps the report, the
  other is recorded in `report_conflicts` (and `rejects`, reason conflict).
- **Gone** (sql/gone.sql, `refresh_gone`): when fetch-log rows are recorded, links whose URL
  answers 404/410 or redirects to the site's home page are gone since their first such
  answer after a good one; a report whose live URLs are all gone is `gone_at` that date,
  cleared when one answers again. The crawler keeps asking on its back-off
  (tasks/crawl/archive/), so a page that comes back is seen.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from string import Template

import duckdb

from warehouse.backend.staging import staged_values, utc_naive
from warehouse.backend.tx import one_row, sql_literal

SQL_DIR = Path(__file__).resolve().parent / "sql"

# A site's home page: the host alone, or its index/default page (a query allowed). A report URL
# that now lands there was taken down; the home page is no report.
HOME_PAGE = r"^https?://[^/?#]+/?((index|default|home|main)\.(s?html?|php|jsp|aspx?|do))?(\?[^#]*)?(#.*)?$"
_HOME_PAGE = re.compile(HOME_PAGE, re.IGNORECASE)
# Columns that name a report by its key elsewhere than in an index_no column.
_KEY_REFERENCES = (("reports", "superseded_by"), ("report_urls", "moved_to"))


def redirected_home(url: str, final_url: str | None) -> bool:
    """Was a request for `url` (not itself a home page) answered from the site's home page?"""
    return bool(final_url) and final_url != url and _is_home(final_url) and not _is_home(url)


def _is_home(url: str | None) -> bool:
    return bool(url) and _HOME_PAGE.match(url or "") is not None


def rekey(con: duckdb.DuckDBPyConnection) -> int:
    """Give the reports in temp table rekeys (old_key, new_key) their new key in every table
    keyed by index_no, and in the columns that refer to a report; return how many."""
    (count,) = one_row(con, "select count(*) from rekeys")
    if not count:
        return 0  # the usual batch
    for table in keyed_tables(con):
        con.execute(f'update "{table}" as t set index_no = k.new_key from rekeys as k where t.index_no = k.old_key')
    for table, column in _KEY_REFERENCES:
        con.execute(f'update "{table}" as t set {column} = k.new_key from rekeys as k where t.{column} = k.old_key')
    con.execute("update reports as r set former_key = k.old_key from rekeys as k where r.index_no = k.new_key")
    return int(count)


def keyed_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every table of the warehouse with an index_no column (reports last: the children of a
    report are moved before it)."""
    return [name for (name,) in con.execute(
        "select table_name from duckdb_columns() join duckdb_tables() using (database_name, schema_name, table_name) "
        "where schema_name = 'main' and not temporary and column_name = 'index_no' "
        "order by table_name = 'reports', table_name").fetchall()]  # fmt: skip


def refresh_gone(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute the gone state of the links the fetch-log rows in temp table stg_fetch_log are
    about, then of their reports (the caller's transaction)."""
    con.execute(Template((SQL_DIR / "gone.sql").read_text(encoding="utf-8")).substitute(home_page=sql_literal(HOME_PAGE)))
    refresh_states(con)
    con.execute("drop table gone_links")


def refresh_states(con: duckdb.DuckDBPyConnection) -> None:
    """Superseded and gone, again, for the reports in temp table history_touched (none, in
    the usual batch: nothing is run then)."""
    if touched(con, "history_touched"):
        con.execute((SQL_DIR / "report_state.sql").read_text(encoding="utf-8"))
        if touched(con, "state_changes"):
            con.execute((SQL_DIR / "report_state_update.sql").read_text(encoding="utf-8"))
        con.execute("drop table state_changes")
    con.execute("drop table history_touched")


def touched(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Does the temp table (or view) hold a row?"""
    (found,) = one_row(con, f"select exists (select 1 from {table})")
    return bool(found)


def history_notes(con: duckdb.DuckDBPyConnection, since: datetime) -> list[str]:
    """One sentence per kind of history a run wrote from `since` on (its start), for the run
    summary: reports found gone, reports superseded, conflicts recorded. [] when none."""
    with staged_values(con, since=utc_naive(since)):
        rows = con.execute(_NOTES).fetchall()
    return [f"{n} {what}: {', '.join(examples)}{' …' if n > len(examples) else ''}"
            for _, what, n, examples in rows if n]


_NOTES = """
select 1, 'report(s) whose page is gone (404/410 or the home page; kept, reports.gone_at)', count(*),
       list_slice(list(index_no || ' (' || url || ')' order by index_no), 1, 5)
from reports, args where gone_at >= args.since
union all
select 2, 'report(s) superseded by the key their page states now (reports.superseded_by)', count(*),
       list_slice(list(index_no || ' → ' || superseded_by order by index_no), 1, 5)
from reports, args where superseded_at >= args.since
union all
select 4, 'page(s) stating a 索引号 another page keeps, with other content (report_conflicts)', count(*),
       list_slice(list(url || ' (' || index_no || ', kept by ' || owner_url || ')' order by url), 1, 5)
from report_conflicts, args where last_seen_at >= args.since and resolved_at is null
order by 1
"""
