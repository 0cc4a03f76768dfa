-- Every version of every report with its text. A body is stored once (migration 0014): a
-- replaced version's in report_versions, the current version's in reports. Compare two versions:
--   select version, observed_at, body_text from report_version_texts where index_no = '…' order by version
create or replace view report_version_texts as
select
    v.index_no,
    v.version,
    v.version = r.version as is_current,
    v.content_sha256,
    v.title,
    v.url,
    v.observed_at,
    v.change_kind,
    v.extractor_version,
    case when v.version = r.version then r.body_text else v.body_text end as body_text
from report_versions as v
left join reports as r using (index_no);

comment on view report_version_texts is 'One row per stored version of a report (report_versions) with its body text, the current version''s included (stored once, in reports.body_text).';
comment on column report_version_texts.index_no is '索引号 of the report.';
comment on column report_version_texts.version is 'Version number, 1, 2, ... in order of observation.';
comment on column report_version_texts.is_current is 'Whether this is the report''s current version (reports.version).';
comment on column report_version_texts.content_sha256 is 'SHA-256 of the extracted content of this version.';
comment on column report_version_texts.title is 'Title as observed in this version.';
comment on column report_version_texts.url is 'URL this version was loaded from.';
comment on column report_version_texts.observed_at is 'When this version was loaded (UTC).';
comment on column report_version_texts.change_kind is '''new'' for version 1, ''content_changed'' for later versions.';
comment on column report_version_texts.extractor_version is 'Extractor version at observation; NULL if none reported.';
comment on column report_version_texts.body_text is 'Cleaned body text of this version, verbatim.';
