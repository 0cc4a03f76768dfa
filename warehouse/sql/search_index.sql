-- Rewrite the search index of the reports in temp table touched_reports (index_no): their
-- sections, with the words warehouse.search marked in them, staged as section_words
-- (index_no, section_id, n_terms, words). Each section indexed gets a new doc_id
-- (migrations/0007_search_doc_ids.sql, 0008_search_words.sql).
delete from search_sections where index_no in (select index_no from touched_reports);

insert into search_sections by name
select nextval('search_doc_ids') as doc_id, index_no, section_id, n_terms, words
from section_words;
