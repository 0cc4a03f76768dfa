-- The body of a report's current version is stored once, in reports.body_text;
-- report_versions.body_text keeps the bodies of the versions since replaced (a content change
-- moves the replaced body there: warehouse/writer/sql/version_bodies.sql). Every body was
-- stored twice, and a load held each new one three times until its commit (staged, version,
-- report): at 10,000 pages the copy in report_versions alone cost the load ~30 MB of resident
-- memory at each commit (BENCHMARKS.md). Analysts read every version's text from the view
-- report_version_texts.
update report_versions as v
set body_text = null
from reports as r
where r.index_no = v.index_no
  and r.version = v.version
  and v.body_text is not null
  and v.body_text = r.body_text;

comment on table report_versions is 'Append-only history: one row per observed content version of a report (a new content_sha256). Re-extraction of the same content adds no row. The text of every version, the current one included: view report_version_texts.';
comment on column report_versions.body_text is 'Cleaned body text of this version, verbatim, once the version is replaced; NULL for the current version, whose body is reports.body_text (stored once). View report_version_texts gives both.';
