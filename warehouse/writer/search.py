"""Maintain the search index: each section's words, marked by a segmenter (search_sections).

Querying is the `search(q)` table macro (schema/views/60_search.sql), in plain SQL so that it runs
in any DuckDB client (the CLI of `make sql` too): it keeps the sections where each part of
the query occurs as a whole word, and ranks them by BM25 (schema/migrations/0008_search_words.sql
says why this replaced the bigram postings of 0003). Word boundaries come from rjieba, the
Rust port of jieba (same dictionary and algorithm; pure-Python jieba segments about 20×
slower, holds 85 MB instead of 33 and imports pkg_resources): the segmenter runs only here,
when a section is indexed, so a query needs none. It is imported on first use, so a run that
loads nothing never pays for its dictionary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from string import Template

import duckdb
import nanoarrow as na

from tasks import settings
from tasks.records import Section
from warehouse.backend.lake import is_lake_connection, retrying
from warehouse.backend.staging import staged, text_fields, to_arrow
from warehouse.backend.tx import transaction

_INDEX_SQL = Path(__file__).resolve().parent / "sql" / "search_index.sql"
# What is indexed of a section: its first 100,000 characters, so that one pathological
# 10 MB paragraph cannot stall a load; real sections are far shorter.
DOCUMENT_CHARS = 100_000
# A section's doc_id as it is indexed: the next value of sequence search_doc_ids (migration
# 0007) in a DuckDB file; in a lake, which has no sequences, a random 63-bit number (nothing
# joins on it there: it only numbers the indexing).
DOC_ID = {"file": "nextval('search_doc_ids')", "lake": "(hash(index_no, section_id, uuid()) >> 1)::bigint"}
_WORD_FIELDS = {"index_no": na.large_string(), "section_id": na.large_string(), "doc_id": na.int64(),
                "n_terms": na.int64(), "words": na.large_string()}


def refresh_search_index(con: duckdb.DuckDBPyConnection) -> None:
    """Rewrite the search index of the reports listed in temp table `touched_reports`."""
    sections = con.execute("select index_no, section_id, null, heading, text from sections "
                           "where index_no in (select index_no from touched_reports)").fetchall()
    with staged(con, {"section_words": _words(sections)}):
        index_section_words(con, "section_words", replaced="touched_reports")


def index_section_words(con: duckdb.DuckDBPyConnection, words: str, *, replaced: str | None) -> None:
    """Index the sections' words in `words` (a table or a subquery: index_no, section_id,
    n_terms, words), after deleting what the index held for the reports in the temp table
    `replaced` (index_no). The loader names only the reports stored before the load
    (None when there are none): a new report has nothing to delete, and the delete scans
    the whole index."""
    if replaced is not None:
        con.execute(f"delete from search_sections where index_no in (select index_no from {replaced})")
    doc_id = DOC_ID["lake" if is_lake_connection(con) else "file"]
    con.execute(Template(_INDEX_SQL.read_text(encoding="utf-8")).substitute(new_doc_id=doc_id, words=words))


def rebuild_search_index(con: duckdb.DuckDBPyConnection, reports_per_transaction: int = settings.BATCH_SIZE) -> int:
    """Re-index every report, e.g. after the segmentation changed; return how many. A batch
    of reports per transaction, as the loader writes them: one statement over a whole corpus
    needs far more than the writer's memory budget."""
    keys = [key for (key,) in con.execute("select index_no from reports order by index_no").fetchall()]
    _in_batches(con, keys, reports_per_transaction, refresh_search_index)
    return len(keys)


def fill_missing_words(con: duckdb.DuckDBPyConnection, reports_per_transaction: int = settings.BATCH_SIZE) -> int:
    """Mark the words of sections indexed before migration 0008 (search_sections.words is
    NULL), keeping their rows and doc_ids; return how many reports. Resumable: a batch of
    reports per transaction, and what is done is not redone."""
    keys = [key for (key,) in con.execute(
        "select distinct index_no from search_sections where words is null order by index_no").fetchall()]
    _in_batches(con, keys, reports_per_transaction, _fill_words)
    return len(keys)


def _fill_words(con: duckdb.DuckDBPyConnection) -> None:
    sections = con.execute(
        """select d.index_no, d.section_id, d.doc_id, s.heading, s.text
           from search_sections as d join sections as s using (index_no, section_id)
           where d.words is null and d.index_no in (select index_no from touched_reports)""").fetchall()
    with staged(con, {"section_words": _words(sections)}):
        con.execute("""update search_sections as d set words = w.words, n_terms = w.n_terms
                       from section_words as w where d.doc_id = w.doc_id""")


def _in_batches(con: duckdb.DuckDBPyConnection, keys: list[str], size: int,
                step: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
    """Run `step` over the reports `keys`, `size` of them per transaction (temp table touched_reports)."""
    for start in range(0, len(keys), size):
        touched = [{"index_no": key} for key in keys[start:start + size]]

        def batch(touched: list[dict] = touched) -> None:
            with transaction(con), staged(con, {"touched_reports": to_arrow(touched, text_fields(["index_no"]))}):
                step(con)

        retrying(con, batch, what="indexing a batch of reports for search")


def _words(sections: list[tuple]) -> na.Array:
    """(index_no, section_id, doc_id, heading, text) rows → the staged table section_words."""
    rows = []
    for index_no, section_id, doc_id, heading, text in sections:
        words, n_terms = marked_words(heading, text)
        rows.append({"index_no": index_no, "section_id": section_id, "doc_id": doc_id,
                     "n_terms": n_terms, "words": words})
    return to_arrow(rows, _WORD_FIELDS)


# --- words -------------------------------------------------------------------------------
def section_words(sections: Sequence[Section]) -> list[tuple[str, int]]:
    """(words, number of words) of each section, as the index stores them. Worked out where
    the page is extracted (tasks/pages.py, on a Dask worker when there are some), else by
    the loader (warehouse/writer/load.py)."""
    return [marked_words(section.heading, section.text) for section in sections]


def marked_words(heading: str | None, text: str | None) -> tuple[str, int]:
    """mark_words, and how many words it marked."""
    words = mark_words(heading, text)
    return words, len(words.split())


def mark_words(heading: str | None, text: str | None) -> str:
    """A section as whole-word search reads it: heading and text (the first DOCUMENT_CHARS
    characters, as indexed) lowercased, with one space at every word boundary, on two lines.

    Boundaries are those of rjieba's search mode: its words, and the dictionary words inside
    a longer one (养老院 → 养老 | 院, so 养老 is a whole word there too). Without its HMM,
    which would guess unknown words: an unknown run falls apart into characters, so a
    boundary too many costs a little precision where one too few would lose a match.
    Whitespace is a boundary and nothing more.
    """
    heading = heading or ""
    text = (text or "")[:max(DOCUMENT_CHARS - len(heading) - 1, 0)]
    return "\n".join(_mark_field(field) for field in (heading, text) if field)


def _mark_field(field: str) -> str:
    import rjieba  # on first use (module doc)

    return " ".join(" ".join(map(_split_inside, rjieba.cut(field.lower(), False))).split())


@lru_cache(maxsize=1 << 16)
def _split_inside(word: str) -> str:
    """A word as its search-mode boundaries split it (words of up to two characters stay)."""
    import rjieba

    if len(word) <= 2:
        return word
    cuts = {0, len(word)}
    for _, start, end in rjieba.tokenize(word, "search", False):
        cuts.update((start, end))
    bounds = sorted(cuts)
    return " ".join(word[a:b] for a, b in zip(bounds, bounds[1:]))

