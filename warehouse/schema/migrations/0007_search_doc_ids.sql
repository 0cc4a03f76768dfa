-- Postings keyed by an integer document id instead of the (index_no, section_id) strings.
--
-- Why: search_terms is by far the largest table (about 3,900 postings per report), and
-- every row repeated its section's two key strings: about two thirds of what each load
-- wrote, and of what each checkpoint rewrote. A section's postings now carry its doc_id,
-- a number from a sequence, given when the section is (re)indexed; search_sections maps
-- it back to the section. Existing postings are carried over, not rebuilt.

create sequence search_doc_ids;

create table search_sections_v2 (
    doc_id     bigint  not null,
    index_no   varchar not null,
    section_id varchar not null,
    n_terms    integer not null,
    primary key (index_no, section_id)
);
insert into search_sections_v2
select nextval('search_doc_ids'), index_no, section_id, n_terms from search_sections;

create table search_terms_v2 (
    doc_id bigint  not null,
    term   varchar not null,
    tf     integer not null
);
insert into search_terms_v2
select s.doc_id, t.term, t.tf
from search_terms as t
join search_sections_v2 as s using (index_no, section_id);

drop table search_terms;
drop table search_sections;
alter table search_sections_v2 rename to search_sections;
alter table search_terms_v2 rename to search_terms;

comment on table search_sections is 'Search index: one row per indexed section with its length in terms (BM25 length normalisation), and the doc_id its postings carry.';
comment on column search_sections.doc_id is 'Number of this indexing of the section (sequence search_doc_ids): the key of its rows in search_terms. A section gets a new one each time its report is reloaded.';
comment on column search_sections.index_no is '索引号 of the report.';
comment on column search_sections.section_id is 'Section id.';
comment on column search_sections.n_terms is 'Number of terms (bigrams and ASCII words) in heading and text.';
comment on table search_terms is 'Search index postings: term frequency of each bigram/word per section (doc_id → search_sections), tokenised by the search_tokens macro.';
comment on column search_terms.doc_id is 'The section: search_sections.doc_id.';
comment on column search_terms.term is 'A Han bigram (or single Han character), or a lowercased ASCII letter/digit word.';
comment on column search_terms.tf is 'Occurrences of the term in the section.';
