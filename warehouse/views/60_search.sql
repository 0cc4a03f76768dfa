-- Chinese full-text search over sections, BM25 in plain SQL over the bigram postings
-- (see migrations/0003_search.sql for why not the fts extension):
--   select * from search('养老床位') limit 10
-- The query is tokenised by the same search_tokens macro as the index. BM25 with the
-- usual k1 = 1.2, b = 0.75 and Lucene's non-negative idf; a section is heading + text.
-- Cost: one scan of search_terms (the matching postings are materialised once).
create or replace macro search(q) as table
with query_terms as (
    select distinct unnest(search_tokens(q)) as term
),
hits as materialized (
    select p.doc_id, p.term, p.tf
    from search_terms as p
    semi join query_terms using (term)
),
corpus as (
    select count(*) as n_sections, avg(n_terms) as avg_terms from search_sections
),
term_idf as (
    select h.term, ln(1 + (c.n_sections - count(*) + 0.5) / (count(*) + 0.5)) as idf
    from hits as h
    cross join corpus as c
    group by h.term, c.n_sections
),
scored as (
    select
        d.index_no,
        d.section_id,
        -- rounded, so that equal scores tie exactly whatever the summation order
        round(sum(i.idf * h.tf * (1.2 + 1)
                  / (h.tf + 1.2 * (1 - 0.75 + 0.75 * d.n_terms / c.avg_terms))), 6) as score,
        count(*) as matched_terms
    from hits as h
    join term_idf as i using (term)
    join search_sections as d using (doc_id)
    cross join corpus as c
    group by d.index_no, d.section_id
),
located as (
    -- first place in the text where a query term occurs, for the snippet (Han text has
    -- no case; an ASCII term written in capitals falls back to the start of the text)
    select sc.*, s.heading, s.text, s.ordinal,
           list_min(list_filter(list_transform(search_tokens(q), lambda t: instr(s.text, t)),
                                lambda pos: pos > 0)) as hit
    from scored as sc
    join sections as s using (index_no, section_id)
)
select
    r.index_no,
    r.region,
    r.title,
    l.section_id,
    l.heading,
    substr(l.text, greatest(coalesce(l.hit, 1) - 20, 1), 80) as snippet,
    l.text,
    l.score,
    l.matched_terms
from located as l
join reports as r using (index_no)
order by l.score desc, r.index_no, l.ordinal;

comment on macro table search is 'search(q): sections ranked by BM25 over Han bigrams and ASCII words (index_no, region, title, section_id, heading, snippet, text, score, matched_terms), best first.';
