-- The child tables of a report (sections, metrics, ranks) and the search index keep their keys
-- without a PRIMARY KEY: each is replaced whole per report by the loader (tables.py:
-- replace_children), which refuses a page listing one key twice (warehouse/load.py), and the
-- unique-key checks verify them after every load (checks). The ART index DuckDB keeps for a
-- PRIMARY KEY cost the load half its merge time and tens of MB it cannot spill (about 2 million
-- keys at 10,000 reports), for no guarantee the loader does not already give (BENCHMARKS.md).
-- DuckDB cannot drop a constraint: each table is made again, rows, comments and all.

create table sections_keyed_by_loader (
    "index_no" varchar not null,
    "section_id" varchar not null,
    "parent_id" varchar,
    "level" integer not null,
    "label" varchar,
    "heading" varchar,
    "text" varchar not null,
    "ordinal" integer not null,
    "kind" varchar,
    "year" integer,
    "load_id" varchar not null
);
insert into sections_keyed_by_loader by name select * from sections;
drop table sections;
alter table sections_keyed_by_loader rename to sections;
comment on table sections is 'Section outline of the current version of each report: one row per heading (plus "0" for the preamble). Replaced whole when the report changes or is re-extracted.';
comment on column sections."index_no" is '索引号 of the report.';
comment on column sections."section_id" is 'Dotted path in the outline: "0" preamble, "2", "2.1", "2.1.3".';
comment on column sections."parent_id" is 'section_id of the enclosing section; NULL for top-level sections and the preamble.';
comment on column sections."level" is 'Depth: 0 preamble/part, 1 一、, 2 (一), 3 1./1、, 4 (1) or inline 一是, 5 ①.';
comment on column sections."label" is 'Numeral as written, without punctuation (一, 十一, 1, ①); NULL for the preamble or unnumbered parts.';
comment on column sections."heading" is 'Heading text after the numeral; NULL when the section has no heading (preamble).';
comment on column sections."text" is 'The section''s own text, verbatim (children excluded); empty string if none.';
comment on column sections."ordinal" is 'Position in document order, from 0.';
comment on column sections."kind" is 'summary | plan | problems | highlights; NULL if the extractor could not tell.';
comment on column sections."year" is 'Year the section reports on or plans for; NULL if not determinable.';
comment on column sections."load_id" is 'Load that wrote it.';

create table metrics_keyed_by_loader (
    "index_no" varchar not null,
    "section_id" varchar,
    "value" double not null,
    "value_high" double,
    "unit" varchar,
    "value_norm" double,
    "unit_norm" varchar,
    "qualifier" varchar,
    "subject" varchar,
    "sentence" varchar,
    "ordinal" integer not null,
    "value_high_norm" double,
    "role" varchar,
    "counter" varchar,
    "indicator" varchar,
    "year" integer,
    "text" varchar,
    "load_id" varchar not null,
    "kind" varchar,
    "scope" varchar
);
insert into metrics_keyed_by_loader by name select * from metrics;
drop table metrics;
alter table metrics_keyed_by_loader rename to metrics;
comment on table metrics is 'Quantities written with Arabic digits in the current version of each report. Replaced whole when the report changes or is re-extracted.';
comment on column metrics."index_no" is '索引号 of the report.';
comment on column metrics."section_id" is 'Section the quantity stands in; NULL if it is outside the outline.';
comment on column metrics."value" is 'Number as written (8350.3 in 8350.3万元).';
comment on column metrics."value_high" is 'Upper end of a range (2 in 1-2家); NULL for a single value.';
comment on column metrics."unit" is 'Unit as written, multiplier and qualifier characters included (万元, 余人, 元/人·月); NULL if none written.';
comment on column metrics."value_norm" is 'value × multiplier (万 10^4, 亿 10^8) in unit_norm; NULL if not normalisable.';
comment on column metrics."unit_norm" is 'Normalised unit from unit_vocabulary (yuan, person, percent, ...); NULL if not normalisable.';
comment on column metrics."qualifier" is 'over (余/多) | approx (约/近) | ge (以上) | le (以下); NULL if the number is exact as written.';
comment on column metrics."subject" is 'What the number measures, as phrased on the page (城乡低保标准); NULL if not identified.';
comment on column metrics."sentence" is 'The sentence the quantity stands in, verbatim.';
comment on column metrics."ordinal" is 'Position within the report, from 0.';
comment on column metrics."value_high_norm" is 'value_high normalised like value_norm; NULL for a single value.';
comment on column metrics."role" is 'previous | current for old→new pairs (从1330元调整为1420元); NULL otherwise.';
comment on column metrics."counter" is 'Measure word when unit_norm is item (个, 家, 件); NULL otherwise.';
comment on column metrics."indicator" is 'Canonical indicator code (config/indicators.csv); NULL if the subject matched none.';
comment on column metrics."year" is 'Year the number refers to; NULL if not determinable (views fall back to the section year).';
comment on column metrics."text" is 'The quantity as written (8350.3万元).';
comment on column metrics."load_id" is 'Load that wrote it.';
comment on column metrics."kind" is 'What kind of quantity the figure is: level | amount | cumulative | change | rate | share | part | removal | target | other; NULL when loaded before the extractor said (reprocess fills it).';
comment on column metrics."scope" is 'Scope the sentence gives this figure: 城市 | 农村 | 城乡; NULL where it gives none.';

create table ranks_keyed_by_loader (
    "index_no" varchar not null,
    "section_id" varchar,
    "ordinal" integer not null,
    "rank" integer not null,
    "scope" varchar,
    "subject" varchar,
    "tied" boolean not null,
    "text" varchar,
    "sentence" varchar,
    "load_id" varchar not null
);
insert into ranks_keyed_by_loader by name select * from ranks;
drop table ranks;
alter table ranks_keyed_by_loader rename to ranks;
comment on table ranks is 'Rankings stated in the current version of each report (排名全市第一). Replaced whole when the report changes.';
comment on column ranks."index_no" is '索引号 of the report.';
comment on column ranks."section_id" is 'Section the ranking stands in; NULL if outside the outline.';
comment on column ranks."ordinal" is 'Position within the report, from 0.';
comment on column ranks."rank" is 'Rank as a number (1 for 第一).';
comment on column ranks."scope" is 'Population ranked within (全市, 全省); NULL if not stated.';
comment on column ranks."subject" is 'What is ranked; NULL if not identified.';
comment on column ranks."tied" is 'True when stated as tied (并列).';
comment on column ranks."text" is 'The ranking as written (排名全市第一).';
comment on column ranks."sentence" is 'The sentence it stands in, verbatim.';
comment on column ranks."load_id" is 'Load that wrote it.';

create table search_sections_keyed_by_loader (
    "doc_id" bigint not null,
    "index_no" varchar not null,
    "section_id" varchar not null,
    "n_terms" integer not null,
    "words" varchar
);
insert into search_sections_keyed_by_loader by name select * from search_sections;
drop table search_sections;
alter table search_sections_keyed_by_loader rename to search_sections;
comment on table search_sections is 'Search index: one row per indexed section, with its words marked for whole-word matching and its length (BM25 length normalisation); search(q) reads it.';
comment on column search_sections."doc_id" is 'Number of this indexing of the section (sequence search_doc_ids). A section gets a new one each time its report is reloaded.';
comment on column search_sections."index_no" is '索引号 of the report.';
comment on column search_sections."section_id" is 'Section id.';
comment on column search_sections."n_terms" is 'Number of words in heading and text (the section''s length, for BM25''s length normalisation); counted in bigrams before migration 0008, until its words are filled in.';
comment on column search_sections."words" is 'The section as whole-word search reads it: heading and text (the first 100,000 characters) lowercased, one space at every word boundary (rjieba, search mode: its words and the dictionary words inside longer ones), heading and text on two lines. NULL only between migration 0008 and the filling of the sections it found.';
