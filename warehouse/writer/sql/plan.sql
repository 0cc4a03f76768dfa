-- Step 4 of a load: decide what happens to each key of the batch, and to each page.
-- Input: batch_pages (sql/moves.sql: the staged pages under the keys they are stored under).
--
-- One page represents a key: its owner's. A key's owner is the page that stated it first: of
-- the report's live links (not moved elsewhere, not gone) the first seen; for a key the
-- warehouse does not hold, the earliest fetch of the batch; for a report taking the 索引号 its
-- page now states (sql/keys.sql: rekeys), that page. Another page stating the key with the
-- same content (as the report will hold after this load) is one more URL of the report; with
-- other content it is a conflict (sql/conflicts.sql), never a version: two pages with one
-- 索引号 cannot flip the report between them from run to run. A URL's older fetches in the
-- batch are duplicates (not planned).
create or replace temp table page_plan as
with owners as (
    select index_no, arg_min(url, (first_seen_at, url)) as owner_url
    from report_urls
    semi join batch_pages using (index_no)
    where moved_to is null and gone_at is null
    group by index_no
),
ranked as (
    select b.*, o.owner_url, k.page_idx is not null as claims,
           row_number() over (
               partition by b.index_no
               order by k.page_idx is not null desc, b.url = o.owner_url desc nulls last, b.fetched_at nulls last,
                        b.page_idx) as pick
    from batch_pages as b
    left join owners as o using (index_no)
    left join rekeys as k using (page_idx)
    where b.latest_of_url
),
flagged as (
    select * exclude (claims, pick), pick = 1 and (claims or owner_url is null or url = owner_url) as represents
    from ranked
),
keyed as (  -- what the page representing each key says, beside every page of the key
    select *,
           max(url) filter (where represents) over key as winner_url,
           max(content_sha256) filter (where represents) over key as winner_sha256
    from flagged
    window key as (partition by index_no)
)
select
    f.* exclude (winner_url, winner_sha256) replace (coalesce(f.owner_url, f.winner_url) as owner_url),
    case
        when not f.represents then null
        when r.index_no is null then 'new'
        when r.content_sha256 <> f.content_sha256 then 'changed'
        when r.extractor_version is distinct from f.extractor_version then 'reextracted'
        else 'unchanged'
    end as action,
    r.version as stored_version,
    r.url as stored_url,
    r.first_seen_at as stored_first_seen_at,
    r.former_key as stored_former_key,
    r.superseded_by as stored_superseded_by,
    r.superseded_at as stored_superseded_at,
    r.gone_at as stored_gone_at,
    f.content_sha256 = coalesce(f.winner_sha256, r.content_sha256) as same_content,
    f.winner_url is not null as owner_in_batch
from keyed as f
left join reports as r using (index_no);

-- The pages representing their keys, with what they say (the report's columns). A view, not
-- a table: the staged body texts are read by the steps that store them, not copied once more.
create or replace temp view load_plan as
select
    s.* replace (p.index_no as index_no, p.key_kind as key_kind),
    p.action, p.stored_version, p.stored_url, p.stored_first_seen_at, p.stored_former_key,
    p.stored_superseded_by, p.stored_superseded_at, p.stored_gone_at,
    case p.action when 'new' then 1 when 'changed' then p.stored_version + 1
        else p.stored_version end as version
from page_plan as p
join stg_reports as s using (page_idx)
where p.represents;

-- Every other page (latest of its URL): one more URL of its report (same_content), or a
-- conflict. owner_url: the page that keeps the report.
create or replace temp view other_pages as
select * from page_plan where not represents;

-- Pages in conflict, and open conflicts at the batch's URLs: sql/conflicts.sql runs if any.
create or replace temp view conflicting as
select url from other_pages where not same_content
union all
select c.url from report_conflicts as c semi join batch_pages as b using (url) where c.resolved_at is null;

-- The versions this load replaces by a new content: sql/version_bodies.sql runs if any.
create or replace temp view replaced_versions as
select index_no, stored_version as version from page_plan where represents and action = 'changed';

-- Reports whose extraction is written by this load: their children are replaced.
create or replace temp table touched_reports as
select index_no from load_plan where action <> 'unchanged';

-- Of those, the reports stored before this load: only they have children to delete (a key
-- new to the warehouse has none: children are stored with their report, and a rekey moved
-- a stand-in's children to its new key before this plan).
create or replace temp table replaced_reports as
select index_no from load_plan where action not in ('unchanged', 'new');
