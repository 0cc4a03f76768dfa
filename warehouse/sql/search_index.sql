-- Rewrite the search index of the reports in temp table touched_reports (index_no): their
-- sections, with the words warehouse.search marked in them, staged as section_words
-- (index_no, section_id, n_terms, words). Each section indexed gets a new doc_id
-- (migrations/0007_search_doc_ids.sql, 0008_search_words.sql): $new_doc_id is the sequence's
-- next value in a DuckDB file, a hash of the load and the section in a lake, which has no
-- sequences (warehouse/search.py: DOC_ID).
delete from search_sections where index_no in (select index_no from touched_reports);

insert into search_sections by name
select $new_doc_id as doc_id, index_no, section_id, n_terms, words
from section_words;
