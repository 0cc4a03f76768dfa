-- Index sections for search: their words, as warehouse.writer.search marked them (a table or a
-- subquery of index_no, section_id, n_terms, words). warehouse.writer.search.index_section_words
-- first deletes what the index held for those reports. Each section indexed gets a new doc_id
-- (schema/migrations/0007_search_doc_ids.sql, 0008_search_words.sql): $new_doc_id is the sequence's
-- next value in a DuckDB file, a hash of the load and the section in a lake, which has no
-- sequences (warehouse/writer/search.py: DOC_ID).
insert into search_sections by name
select $new_doc_id as doc_id, index_no, section_id, n_terms, words
from $words;
