-- Chinese full-text search: our own bigram postings, maintained incrementally.
--
-- Why not DuckDB's fts extension: it does not segment CJK (a whole run of Han characters
-- would be one "word"), it can only rebuild its index from scratch (every night, over the
-- whole corpus), and every analyst client would need the extension installed, which this
-- network cannot download. Bigrams of Han runs are the classic segmentation-free CJK index
-- (Lucene's CJKAnalyzer): a query is split the same way, so 养老床位 matches 养老|老床|床位.
-- The loader rewrites the postings of the reports it touches (sql/search_index.sql), and
-- the table macro search(q) in views/ scores sections with BM25 in plain SQL.
-- Limitation: a one-character query only matches characters standing alone (no unigrams
-- are indexed inside longer runs, which would double the postings).
--
-- The tokenizer lives here, in a versioned migration, because the stored postings depend
-- on it: a migration that changes it must also rebuild the index
-- (`warehouse.search.rebuild_search_index`).

create macro search_tokens(s) as flatten(list_transform(
    -- Han runs, and ASCII letter/digit runs lowercased (long runs cut into 32-char pieces).
    regexp_extract_all(lower(coalesce(s, '')), '\p{Han}+|[a-z0-9]{1,32}'),
    lambda tok: case
        when length(tok) = 1 or not regexp_matches(tok, '^\p{Han}') then [tok]
        -- Overlapping bigrams as two linear passes, from the 1st and from the 2nd char
        -- (order is irrelevant to a bag of terms; substr per position would be quadratic).
        else list_concat(regexp_extract_all(tok, '..'), regexp_extract_all(substr(tok, 2), '..'))
    end
));

-- What is indexed of a section: heading and text, cut at 100,000 characters so that a
-- pathological page (one 10 MB paragraph) cannot stall a load; real sections are far shorter.
create macro search_document(heading, text) as left(concat_ws(' ', heading, text), 100000);

create table search_sections (
    index_no   varchar not null,
    section_id varchar not null,
    n_terms    integer not null,
    primary key (index_no, section_id)
);

create table search_terms (
    index_no   varchar not null,
    section_id varchar not null,
    term       varchar not null,
    tf         integer not null
);
