-- One row per current report (not superseded): its current version with its history and
-- coverage counts, and whether its page is gone.
create or replace view latest_reports as
with url_counts as (
    select index_no, count(*) as n_urls from report_urls group by index_no
),
current_version as (
    select index_no, observed_at as version_observed_at
    from report_versions
    qualify version = max(version) over (partition by index_no)
),
section_counts as (
    select index_no, count(*) as n_sections from sections group by index_no
),
metric_counts as (
    select index_no, count(*) as n_metrics, count(indicator) as n_indicators
    from metrics group by index_no
)
select
    r.index_no,
    r.region,
    r.source,
    r.title,
    r.publisher,
    r.publish_date,
    r.summary_year,
    r.plan_year,
    r.version,
    v.version_observed_at,
    r.url,
    coalesce(u.n_urls, 0) as n_urls,
    coalesce(s.n_sections, 0) as n_sections,
    coalesce(m.n_metrics, 0) as n_metrics,
    coalesce(m.n_indicators, 0) as n_indicators,
    r.first_seen_at,
    r.updated_at,
    r.extractor_version,
    r.key_kind,
    r.gone_at,
    r.former_key
from reports as r
left join current_version as v using (index_no)
left join url_counts as u using (index_no)
left join section_counts as s using (index_no)
left join metric_counts as m using (index_no)
where r.superseded_by is null;

comment on view latest_reports is 'One row per current report (索引号; superseded ones are left out) at its current version: version number, URL count, outline/metric counts, first_seen_at and updated_at. Bodies are in reports.body_text.';
comment on column latest_reports.index_no is '索引号.';
comment on column latest_reports.region is 'Region.';
comment on column latest_reports.source is 'Source of the current version.';
comment on column latest_reports.title is 'Title.';
comment on column latest_reports.publisher is 'Publisher; NULL if not stated.';
comment on column latest_reports.publish_date is 'Publication date; NULL if not stated.';
comment on column latest_reports.summary_year is 'Year summarised; NULL if not stated.';
comment on column latest_reports.plan_year is 'Year planned; NULL if no plan part.';
comment on column latest_reports.version is 'Current version number.';
comment on column latest_reports.version_observed_at is 'When the current version was first loaded (UTC).';
comment on column latest_reports.url is 'URL of the current version.';
comment on column latest_reports.n_urls is 'Number of URLs serving this report.';
comment on column latest_reports.n_sections is 'Sections in the outline.';
comment on column latest_reports.n_metrics is 'Metrics extracted.';
comment on column latest_reports.n_indicators is 'Of those, metrics resolved to an indicator.';
comment on column latest_reports.first_seen_at is 'First load of this 索引号 (UTC).';
comment on column latest_reports.updated_at is 'Last write of the current row (UTC).';
comment on column latest_reports.extractor_version is 'Extractor version of the current row.';
comment on column latest_reports.key_kind is 'What index_no holds: the page''s 索引号 (index_no), else its document_id or url.';
comment on column latest_reports.gone_at is 'Since when the report''s page is gone (404/410, or a redirect to the home page); NULL while it answers.';
comment on column latest_reports.former_key is 'The stand-in key the report had before its page stated a 索引号; NULL if never rekeyed.';
