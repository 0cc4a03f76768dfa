"""Chinese full-text search by whole words, kept up to date by the loader.

search(q) finds a section when every part of q occurs in it as a whole word (word
boundaries from the segmenter, marked when the section is indexed). So a section holding
养老 and 床位 apart is no hit for 养老床位, and counts of hits are counts of sections that
say it; the bigram index before migration 0008 found them all, ranked by bigrams shared.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import duckdb
import pytest

from tasks.records import Section
from warehouse.backend.connect import connect
from warehouse.schema.migrate import VIEWS_DIR, list_migrations
from warehouse.writer.load import load_pages
from warehouse.writer.search import fill_missing_words, mark_words, rebuild_search_index
from tests.lakes import both_backends
from tests.reports import T0, later, make_page, sections_for

BEDS = "全年新增养老床位120张,养老床位总数达到3000张。"
SCATTERED = "推进居家养老服务,提升服务质量。改造老旧小区,医院增加床位50张。"
HOMES = "新建养老院2所,敬老院改造提升。"
RESIDENTS = "落实居民政策,提高城乡居民医保补助标准。"
CIVIL_AFFAIRS = "县民政局牵头,民政系统上下联动。"


def _sections(key: str, *texts: str) -> list[Section]:
    return [Section(key, str(i), None, 1, str(i), f"第{i}部分", text, i) for i, text in enumerate(texts, 1)]


def _pages() -> list:
    return [
        make_page("A-1", region="天台县", sections=_sections("A-1", BEDS, SCATTERED, "2023年完成殡葬改革。"),
                  metrics=[], ranks=[]),
        make_page("B-1", source="xianju", region="仙居县", sections=_sections("B-1", SCATTERED, HOMES, RESIDENTS),
                  metrics=[], ranks=[]),
        make_page("C-1", source="cixi", region="慈溪市", sections=_sections("C-1", CIVIL_AFFAIRS, "养老床位。"),
                  metrics=[], ranks=[]),
    ]


@pytest.fixture
def con(migrated_target: str | Path):
    """The three reports loaded into a copy of migrated_file, or a new lake under @both_backends."""
    connection = connect(migrated_target)
    load_pages(connection, "run-1", _pages(), T0)
    yield connection
    connection.close()


def hits(con: duckdb.DuckDBPyConnection, q: str) -> list[tuple]:
    return con.execute("select index_no, section_id, score, occurrences from search(?)", [q]).fetchall()


def one(con: duckdb.DuckDBPyConnection, sql: str, *params):
    return con.execute(sql, list(params)).fetchone()


# --- what is a hit -----------------------------------------------------------------------
@both_backends
def test_the_whole_word_ranks_above_its_characters_scattered_which_are_no_hit(con) -> None:
    found = {(key, section): occurrences for key, section, _, occurrences in hits(con, "养老床位")}
    assert found == {("A-1", "1"): 2, ("C-1", "2"): 1}
    # the scattered sections hold the bigrams the old index matched them by (养老, 床位)
    assert one(con, "select count(*) from sections where text like '%养老%' and text like '%床位%'") == (4,)
    # …each part alone finds them: then they are hits, below the sections saying 养老床位
    both = [h[:2] for h in hits(con, "养老 床位")]
    assert set(both[:2]) == {("A-1", "1"), ("C-1", "2")} and set(both[2:]) == {("A-1", "2"), ("B-1", "1")}


@both_backends
def test_counts_are_counts_of_sections_that_say_it(con) -> None:
    for q in ("养老床位", "殡葬改革", "床位", "居民"):
        (searched,) = one(con, "select count(*) from search(?)", q)
        (saying,) = one(con, "select count(*) from sections where contains(text, ?)", q)
        assert searched == saying, q
    assert hits(con, "殡葬改革 床位") == []  # every part, in one section
    assert hits(con, "") == [] and hits(con, "，。") == []


def test_a_word_is_not_found_inside_other_words(con) -> None:
    assert [h[:2] for h in hits(con, "民政")] == [("C-1", "1")]  # not in 居民政策
    assert [h[:2] for h in hits(con, "老床")] == []  # 养老|床位: no word 老床 anywhere
    # the dictionary words inside a longer one are whole words there: 养老 in 养老院
    assert ("B-1", "2") in {h[:2] for h in hits(con, "养老")}
    assert {h[:2] for h in hits(con, "2023")} == {("A-1", "3")}
    assert hits(con, "202") == [] and hits(con, "023") == []


def test_one_character_words_and_the_limit_of_four_parts(con) -> None:
    assert {h[:2] for h in hits(con, "院")} == {("B-1", "2")}  # 养老|院, 敬老|院: a word there
    # 老 stands apart only in 老旧小区 (老|旧|小区 in search mode), never in 养老
    assert {h[:2] for h in hits(con, "老")} == {("A-1", "2"), ("B-1", "1")}
    assert len(hits(con, "养老 床位 增加 医院")) == 2  # the two sections of SCATTERED
    with pytest.raises(duckdb.Error, match="at most four words or phrases"):
        hits(con, "养老 床位 增加 医院 质量")


def test_mark_words_puts_a_space_at_every_word_boundary() -> None:
    assert mark_words("养老服务", "全年新增养老床位120张。") == "养老 服务\n全年 新增 养老 床位 120 张 。"
    assert mark_words(None, "新建养老院  ABC局") == "新建 养老 院 abc 局"
    assert mark_words(None, "居民政策") == "居民 政策"
    assert mark_words("标题", "x" * 200_000).count("x") == 100_000 - len("标题") - 1  # as indexed


def test_queries_are_ranked_by_score_and_show_where_they_matched(con) -> None:
    rows = con.execute("select index_no, snippet, score from search('养老')").fetchall()
    assert [r[2] for r in rows] == sorted((r[2] for r in rows), reverse=True)
    assert all("养老" in snippet for _, snippet, _ in rows)


# --- the index follows the data ----------------------------------------------------------
@both_backends
def test_search_index_follows_changes(con) -> None:
    assert hits(con, "殡葬改革")[0][:2] == ("A-1", "3")
    load_pages(con, "run-2", [make_page("C-1", source="cixi", region="慈溪市", body="v2",
                                        sections=sections_for("C-1", plan_text="推进殡葬改革。"))], later(60))
    assert {h[:2] for h in hits(con, "殡葬改革")} == {("A-1", "3"), ("C-1", "2")}
    assert one(con, "select count(*) from search_sections where index_no = 'C-1'") == (5,)
    assert one(con, "select count(*) from search_sections where words is null") == (0,)
    # the rewritten report's sections have new doc ids; no id is given twice
    assert one(con, "select count(*) - count(distinct doc_id) from search_sections") == (0,)


QUERIES = ("养老床位", "养老", "民政", "殡葬改革", "2023", "床位 养老")


def _answers(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    return {q: con.execute("select * exclude (text) from search(?)", [q]).fetchall() for q in QUERIES}


def test_rebuilding_the_search_index_batch_by_batch_answers_as_before(con) -> None:
    before, sections = _answers(con), one(con, "select count(*), sum(n_terms) from search_sections")
    assert rebuild_search_index(con, reports_per_transaction=2) == 3  # two transactions
    assert _answers(con) == before
    assert one(con, "select count(*), sum(n_terms) from search_sections") == sections


# --- migrations carry an existing index over ----------------------------------------------
# The loader's index step before migration 0007 (postings keyed by index_no, section_id)…
_SEARCH_INDEX_0006 = """
delete from search_terms where index_no in (select index_no from touched_reports);
delete from search_sections where index_no in (select index_no from touched_reports);
create or replace temp table section_tokens as
select index_no, section_id, search_tokens(search_document(heading, text)) as tokens
from sections where index_no in (select index_no from touched_reports);
insert into search_sections by name select index_no, section_id, len(tokens) as n_terms from section_tokens;
insert into search_terms by name
select index_no, section_id, unnest(map_keys(counts)) as term, unnest(map_values(counts))::integer as tf
from (select index_no, section_id, list_histogram(tokens) as counts from section_tokens);
drop table section_tokens;
"""
# …and before 0008: postings by doc_id, sections without their words.
_SEARCH_INDEX_0007 = """
delete from search_terms where doc_id in (
    select doc_id from search_sections where index_no in (select index_no from touched_reports));
delete from search_sections where index_no in (select index_no from touched_reports);
create or replace temp table section_tokens as
select nextval('search_doc_ids') as doc_id, index_no, section_id,
       search_tokens(search_document(heading, text)) as tokens
from sections where index_no in (select index_no from touched_reports);
insert into search_sections by name select doc_id, index_no, section_id, len(tokens) as n_terms from section_tokens;
insert into search_terms by name
select doc_id, unnest(map_keys(counts)) as term, unnest(map_values(counts))::integer as tf
from (select doc_id, list_histogram(tokens) as counts from section_tokens);
drop table section_tokens;
"""


def _indexed_before(version: int, index_sql: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A warehouse indexed as the code did before migration `version`: without the search
    migrations from `version` on (the others, which the loader needs, are applied)."""
    migrations, views = tmp_path / f"migrations-{version}", tmp_path / f"views-{version}"
    migrations.mkdir()
    for m in list_migrations():
        if m.version not in SEARCH_MIGRATIONS or m.version < version:
            shutil.copy(m.path, migrations / m.name)
    shutil.copytree(VIEWS_DIR, views, ignore=shutil.ignore_patterns("60_search.sql"))  # binds to newer columns
    path = tmp_path / f"before-{version}.duckdb"
    with monkeypatch.context() as old_code:
        old_code.setattr(importlib.import_module("warehouse.schema.migrate"), "MIGRATIONS_DIR", migrations)
        old_code.setattr(importlib.import_module("warehouse.schema.migrate"), "VIEWS_DIR", views)
        old_code.setattr(importlib.import_module("warehouse.writer.load"), "_index_sections",
                         lambda c, *_: c.execute(index_sql))
        con = connect(path)
        load_pages(con, "run-1", _pages(), T0)
        con.close()
    return path


SEARCH_MIGRATIONS = (7, 8, 13)  # 0007_search_doc_ids, 0008_search_words; 0013 remakes search_sections after them


def _warehouse_indexed_before_0008(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _indexed_before(8, _SEARCH_INDEX_0007, tmp_path, monkeypatch)


def test_migrations_0007_and_0008_carry_an_index_keyed_by_section_over(con, tmp_path, monkeypatch) -> None:
    expected = _answers(con)
    old = _indexed_before(7, _SEARCH_INDEX_0006, tmp_path, monkeypatch)
    migrated = connect(old)  # applies 0007 (doc ids), 0008, then fills in the words
    try:
        assert one(migrated, "select count(*) from duckdb_tables() where table_name = 'search_terms'") == (0,)
        assert _answers(migrated) == expected
        # and the next load indexes on from there
        load_pages(migrated, "run-2", [make_page("C-1", source="cixi", region="慈溪市", body="v2",
                                                 sections=sections_for("C-1", plan_text="推进殡葬改革。"))],
                   later(60))  # fmt: skip
        assert ("C-1", "2") in {h[:2] for h in hits(migrated, "殡葬改革")}
    finally:
        migrated.close()


def test_migration_0008_marks_the_words_of_an_existing_index(con, tmp_path, monkeypatch) -> None:
    expected = _answers(con)
    old = _warehouse_indexed_before_0008(tmp_path, monkeypatch)
    with duckdb.connect(str(old)) as raw:
        assert one(raw, "select count(*) from schema_migrations where version = 8") == (0,)
        doc_ids = raw.execute("select index_no, section_id, doc_id from search_sections order by all").fetchall()
    migrated = connect(old)  # applies 0008, then fills in the words
    try:
        assert one(migrated, "select count(*) from search_sections where words is null") == (0,)
        assert migrated.execute("select index_no, section_id, doc_id from search_sections order by all"
                                ).fetchall() == doc_ids  # fmt: skip
        assert _answers(migrated) == expected
    finally:
        migrated.close()


def test_filling_the_words_resumes_where_it_stopped(con, tmp_path, monkeypatch) -> None:
    old = _warehouse_indexed_before_0008(tmp_path, monkeypatch)
    search = importlib.import_module("warehouse.writer.search")
    calls = []

    def fail_on_second(c: duckdb.DuckDBPyConnection) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        real(c)

    real = search._fill_words
    with monkeypatch.context() as broken:
        broken.setattr(search, "_fill_words", fail_on_second)
        broken.setattr(importlib.import_module("warehouse.schema.migrate"), "BACKFILLS",
                       {8: lambda c: fill_missing_words(c, reports_per_transaction=1)})
        with pytest.raises(RuntimeError, match="killed"):
            connect(old)
    with duckdb.connect(str(old)) as raw:  # the first report's batch committed, the rest not
        assert one(raw, "select count(distinct index_no) from search_sections where words is null") == (2,)
    resumed = connect(old)
    try:
        assert one(resumed, "select count(*) from search_sections where words is null") == (0,)
        assert _answers(resumed) == _answers(con)
    finally:
        resumed.close()
