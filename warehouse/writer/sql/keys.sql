-- Step 1 of a load: the key each page of the batch is stored under, and the reports that take
-- a 索引号 (rekeys). Inputs: stg_reports (index_no and key_kind as extracted; url, the page's
-- URL after redirects; page_url, the URL asked for; fallback_key, the key its URL would give
-- it without a 索引号). Two cases move a page off the key it was extracted with:
--
-- * Rekey: a page states a 索引号 the warehouse does not hold, at a URL of a report keyed by a
--   stand-in (its document id or URL: key_kind), or under that stand-in: the report takes the
--   索引号 with its whole history (warehouse.writer.history.rekey), and the page represents it. One
--   report per 索引号 and one 索引号 per report: the earliest page claims a report, the oldest
--   report a 索引号; any other pair is left to the link moves (the other report is superseded).
-- * Adoption: a page stating no 索引号, at a URL that serves a stored report under another key
--   (the page stopped printing its 索引号, or its stand-in changed spelling): it stays that
--   report (the same page keeps one key, whatever it prints).
create or replace temp table rekeys as
with stand_ins as (
    select index_no, first_seen_at
    from reports
    where key_kind in ('document_id', 'url') and superseded_by is null
),
claims as (
    select p.index_no, p.url, p.page_url, p.fallback_key, p.fetched_at, p.page_idx
    from stg_reports as p
    anti join reports as r using (index_no)
    where p.key_kind = 'index_no'
),
candidates as (
    select c.page_idx, c.fetched_at, c.index_no as new_key, s.index_no as old_key, s.first_seen_at
    from claims as c join stand_ins as s on s.index_no = c.fallback_key
    union
    select c.page_idx, c.fetched_at, c.index_no, s.index_no, s.first_seen_at
    from claims as c
    join report_urls as u on u.url = c.url and u.moved_to is null
    join stand_ins as s on s.index_no = u.index_no
    union
    select c.page_idx, c.fetched_at, c.index_no, s.index_no, s.first_seen_at
    from claims as c
    join report_urls as u on u.url = c.page_url and u.moved_to is null
    join stand_ins as s on s.index_no = u.index_no
),
one_per_report as (
    select * from candidates
    qualify row_number() over (partition by old_key order by fetched_at nulls last, page_idx) = 1
)
select old_key, new_key, page_idx
from one_per_report
qualify row_number() over (partition by new_key order by first_seen_at, old_key) = 1;

create or replace temp table page_keys as
with unknown as (
    select p.page_idx, p.url, p.page_url
    from stg_reports as p
    anti join reports as r using (index_no)
    anti join rekeys as k on k.new_key = p.index_no
    where p.key_kind in ('document_id', 'url')
),
adopted as (
    select q.page_idx, coalesce(k.new_key, r.index_no) as index_no,
           case when k.new_key is not null then 'index_no' else r.key_kind end as key_kind
    from unknown as q
    join report_urls as u on u.url in (q.url, q.page_url) and u.moved_to is null
    join reports as r on r.index_no = u.index_no and r.superseded_by is null
    left join rekeys as k on k.old_key = r.index_no
    qualify row_number() over (partition by q.page_idx order by r.updated_at desc, r.index_no) = 1
)
select p.page_idx,
       coalesce(a.index_no, p.index_no) as index_no,
       case when a.page_idx is null then p.key_kind else a.key_kind end as key_kind,
       a.page_idx is not null as adopted
from stg_reports as p
left join adopted as a using (page_idx);
