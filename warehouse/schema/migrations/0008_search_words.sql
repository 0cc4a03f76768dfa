-- Whole-word search: the index holds each section's words, marked by a segmenter, instead
-- of bigram postings.
--
-- Why: the bigram postings (0003) could not tell a section saying 养老床位 from one saying
-- 养老 in one sentence and 床位 in another, nor 民政 from the 惠民政策 that contains its
-- characters: every such section was a hit, ranked by how many bigrams it shared, and counts
-- of hits were inflated (126 sections for 养老床位 in the sample warehouse, 6 of which say
-- it). search(q) (views/60_search.sql) now keeps the sections where each part of the query
-- occurs as a whole word: its first and last characters fall on word boundaries.
--
-- The boundaries come from rjieba, jieba's Rust port, when a section is indexed
-- (warehouse/search.py: mark_words), so a query needs no segmenter and search(q) still runs
-- in any DuckDB client. `words` holds the section as search matches it: heading and text
-- (their first 100,000 characters) lowercased, one space at every boundary, on two lines.
-- A query scans it (a regular expression per part, after a cheap contains()), which is
-- faster than the postings were and needs neither their table (the largest of the
-- warehouse: ~3,900 rows per report) nor their tokenising on every load.
--
-- An existing index is carried over: its sections keep their rows and doc_ids, and their
-- words (and n_terms, now counted in words) are filled in after this migration, a batch of
-- reports per transaction (warehouse.search.fill_missing_words, which warehouse.migrate
-- runs after migration 8 until none is missing; until then such a section is found by no
-- search). The postings and their tokenizer macros go: nothing reads them any more.
alter table search_sections add column words varchar;
drop table search_terms;
drop macro search_tokens;
drop macro search_document;

comment on table search_sections is 'Search index: one row per indexed section, with its words marked for whole-word matching and its length (BM25 length normalisation); search(q) reads it.';
comment on column search_sections.doc_id is 'Number of this indexing of the section (sequence search_doc_ids). A section gets a new one each time its report is reloaded.';
comment on column search_sections.n_terms is 'Number of words in heading and text (the section''s length, for BM25''s length normalisation); counted in bigrams before migration 0008, until its words are filled in.';
comment on column search_sections.words is 'The section as whole-word search reads it: heading and text (the first 100,000 characters) lowercased, one space at every word boundary (rjieba, search mode: its words and the dictionary words inside longer ones), heading and text on two lines. NULL only between migration 0008 and the filling of the sections it found.';
