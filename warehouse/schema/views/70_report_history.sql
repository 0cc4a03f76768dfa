-- Every report, current or not, with what its history says beyond its versions
-- (warehouse/writer/history.py): superseded by another key, rekeyed from a stand-in, gone, in
-- conflict. What an operator reads after a night that renumbered, removed or duplicated pages:
--   select * from report_history where status <> 'current' or open_conflicts > 0
create or replace view report_history as
with versions as (
    select index_no, count(*) as n_versions, min(observed_at) as first_version_at from report_versions group by index_no
),
links as (
    select index_no, count(*) as n_urls, count(*) filter (where moved_to is null) as live_urls,
           count(*) filter (where moved_to is null and gone_at is not null) as gone_urls
    from report_urls group by index_no
),
conflicts as (
    select index_no, count(*) as n_conflicts, count(*) filter (where resolved_at is null) as open_conflicts
    from report_conflicts group by index_no
)
select
    r.index_no,
    r.region,
    r.title,
    case when r.superseded_by is not null then 'superseded' when r.gone_at is not null then 'gone'
         else 'current' end as status,
    r.superseded_by,
    r.superseded_at,
    r.gone_at,
    r.key_kind,
    r.former_key,
    r.version,
    coalesce(v.n_versions, 0) as n_versions,
    coalesce(l.n_urls, 0) as n_urls,
    coalesce(l.live_urls, 0) as live_urls,
    coalesce(l.gone_urls, 0) as gone_urls,
    coalesce(c.n_conflicts, 0) as n_conflicts,
    coalesce(c.open_conflicts, 0) as open_conflicts,
    r.url,
    r.first_seen_at,
    r.updated_at
from reports as r
left join versions as v using (index_no)
left join links as l using (index_no)
left join conflicts as c using (index_no);

comment on view report_history is 'Every report, superseded ones too, with its state (current | gone | superseded), what superseded it, when its page went, the key it had before its 索引号, and its versions, URLs and conflicts.';
comment on column report_history.index_no is 'Key of the report (索引号, or its stand-in: key_kind).';
comment on column report_history.region is 'Region.';
comment on column report_history.title is 'Title of the current version.';
comment on column report_history.status is 'superseded (every URL of it states another key), gone (its page answers 404/410 or goes to the home page; still current), or current.';
comment on column report_history.superseded_by is 'Key of the report that took its place; NULL unless superseded.';
comment on column report_history.superseded_at is 'When it was superseded (UTC); NULL unless superseded.';
comment on column report_history.gone_at is 'Since when its page is gone (UTC); NULL while it answers.';
comment on column report_history.key_kind is 'index_no | document_id | url: what the key is.';
comment on column report_history.former_key is 'The stand-in key it had before its page stated a 索引号; NULL if never rekeyed.';
comment on column report_history.version is 'Current version number.';
comment on column report_history.n_versions is 'Versions stored (report_versions).';
comment on column report_history.n_urls is 'URLs it was seen at (report_urls), moved ones included.';
comment on column report_history.live_urls is 'Of those, URLs that still state its key.';
comment on column report_history.gone_urls is 'Of the live URLs, those gone (404/410, home page).';
comment on column report_history.n_conflicts is 'Other pages that stated its key with other content (report_conflicts).';
comment on column report_history.open_conflicts is 'Of those, conflicts not resolved.';
comment on column report_history.url is 'URL of the current version.';
comment on column report_history.first_seen_at is 'First load of this report (UTC).';
comment on column report_history.updated_at is 'Last write of its current row (UTC).';
