-- Step 3 of a load (after keys.sql and any rekey): what each URL of the batch states now.
-- A URL says what its newest fetch in the batch says (batch_pages.latest_of_url). Its link to
-- the key it states is live again (moved_to and gone_at cleared: the page answers, under that
-- key); its links to any other key moved to that one (sql/relink.sql writes both, only when
-- history_touched holds a link that changes). history_touched: the reports whose links change
-- so, and the reports of the batch that are superseded or gone: their state is recomputed at
-- the end of the load (sql/report_state.sql). Nothing is written when nothing changes.
create or replace temp table batch_pages as  -- narrow: bodies stay in stg_reports
select s.page_idx, k.index_no, k.key_kind, k.adopted, s.url, s.page_url, s.source, s.fetched_at,
       s.content_sha256, s.extractor_version, s.title, s.fetch_id, s.raw_sha256,
       row_number() over (partition by s.url order by s.fetched_at desc nulls last, s.page_idx desc) = 1
           as latest_of_url
from stg_reports as s
join page_keys as k using (page_idx);

create or replace temp table history_touched as
select u.index_no
from report_urls as u
join batch_pages as b on b.latest_of_url and u.url = b.url
where (u.index_no <> b.index_no and u.moved_to is distinct from b.index_no)
   or (u.index_no = b.index_no and (u.moved_to is not null or u.gone_at is not null))
union
select r.index_no
from reports as r
semi join batch_pages as b using (index_no)
where r.superseded_by is not null or r.gone_at is not null;
