-- Chinese full-text search over sections, in plain SQL (any DuckDB client, the CLI too):
--   select * from search('养老床位') limit 10
-- The query is cut into parts, its runs of Han characters, letters and digits (search_parts,
-- at most four); a section is a hit when every part occurs in it as a whole word: between
-- two word boundaries of search_sections.words, which the segmenter marked when the section
-- was indexed (migrations/0008_search_words.sql). 养老床位 is no hit in a section saying 养老
-- here and 床位 there, nor 民政 in 惠民政策; 养老 is one in 养老院 (a dictionary word inside).
-- Ranking is BM25 over the parts, each part a term (k1 = 1.2, b = 0.75, Lucene's
-- non-negative idf, the section's length in words). Cost: one scan of the words, where a
-- contains() on each part's first two characters skips most sections before the regular
-- expressions run.
--
-- Each part is spelled out as search_parts(q)[1] … [4] rather than joined in as rows: a
-- regular expression that is a constant is compiled once, one that comes from a column
-- once per row (20 times slower).

-- The parts of a query: its runs of Han characters, lowercase letters and digits.
create or replace macro search_parts(q) as
    list_distinct(regexp_extract_all(lower(coalesce(q, '')), '[\p{Han}a-z0-9]+'));

-- A part as a whole word of search_sections.words: a boundary (space, line break, start or
-- end) before and after it, and at most one space between its characters (a boundary inside
-- the part, or a space in the text).
create or replace macro search_word_pattern(part) as
    '(?:^|\s)' || array_to_string(string_split(part, ''), ' ?') || '(?:\s|$)';

-- How often a part occurs as a whole word in `words` (NULL for no part).
create or replace macro search_tf(words, part) as
    len(regexp_extract_all(words, search_word_pattern(part)));

-- Whether `words` may hold the part: its first two characters are there, with or without a
-- boundary between them (NULL part: false). A plain substring test, far cheaper than the
-- regular expression it spares most sections.
create or replace macro search_may_hold(words, part) as coalesce(
    contains(words, left(part, 2))
    or (length(part) > 1 and contains(words, left(part, 1) || ' ' || substr(part, 2, 1))),
    false);

create or replace macro search(q) as table
with matched as materialized (
    select d.index_no, d.section_id, d.n_terms,
           [search_tf(d.words, search_parts(q)[1]), search_tf(d.words, search_parts(q)[2]),
            search_tf(d.words, search_parts(q)[3]), search_tf(d.words, search_parts(q)[4])] as tf
    from search_sections as d
    where (search_may_hold(d.words, search_parts(q)[1]) or search_may_hold(d.words, search_parts(q)[2])
           or search_may_hold(d.words, search_parts(q)[3]) or search_may_hold(d.words, search_parts(q)[4]))
      and (len(search_parts(q)) <= 4
           or error('search(q) takes at most four words or phrases: ' || array_to_string(search_parts(q), ' ')))
),
per_part as (
    select m.index_no, m.section_id, m.n_terms, i, m.tf[i] as tf
    from matched as m
    cross join range(1, len(search_parts(q)) + 1) as parts(i)
),
part_idf as (
    -- document frequency of each part: the sections where it occurs as a whole word
    select i, ln(1 + (c.n_sections - count_if(tf > 0) + 0.5) / (count_if(tf > 0) + 0.5)) as idf
    from per_part
    cross join (select count(*) as n_sections from search_sections) as c
    group by i, c.n_sections
),
scored as (
    select
        p.index_no,
        p.section_id,
        -- rounded, so that equal scores tie exactly whatever the summation order
        round(sum(i.idf * p.tf * (1.2 + 1)
                  / (p.tf + 1.2 * (1 - 0.75 + 0.75 * p.n_terms / c.avg_terms))), 6) as score,
        sum(p.tf)::bigint as occurrences
    from per_part as p
    join part_idf as i using (i)
    cross join (select avg(n_terms) as avg_terms from search_sections) as c
    group by p.index_no, p.section_id
    having min(p.tf) > 0  -- every part
),
located as (
    -- first place in the text where the first part occurs, for the snippet (a part whose
    -- letters are capitals in the text falls back to the start of the text)
    select sc.*, s.heading, s.text, s.ordinal, instr(lower(s.text), search_parts(q)[1]) as hit
    from scored as sc
    join sections as s using (index_no, section_id)
)
select
    r.index_no,
    r.region,
    r.title,
    l.section_id,
    l.heading,
    substr(l.text, greatest(coalesce(nullif(l.hit, 0), 1) - 20, 1), 80) as snippet,
    l.text,
    l.score,
    l.occurrences
from located as l
join reports as r using (index_no)
where r.superseded_by is null
order by l.score desc, r.index_no, l.ordinal;

comment on macro table search is 'search(q): sections of current reports where every part of q (its runs of Han characters, letters and digits; at most four) occurs as a whole word, ranked by BM25 (index_no, region, title, section_id, heading, snippet, text, score, occurrences), best first.';
comment on macro search_parts is 'The parts of a search query: its runs of Han characters, lowercase letters and digits, each to be found as a whole word.';
comment on macro search_word_pattern is 'Regular expression matching a search part as a whole word in search_sections.words.';
comment on macro search_tf is 'How often a search part occurs as a whole word in search_sections.words.';
comment on macro search_may_hold is 'Whether search_sections.words may hold a search part (its first two characters are there, a boundary between them or not): the cheap filter before search_tf.';
