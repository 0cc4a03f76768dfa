-- Step 5: append a version row for every new report and every content change. Its body is
-- not copied here: the current version's body is reports.body_text (migration 0014), and moves
-- to this row when a later version replaces it (sql/version_bodies.sql).
insert into report_versions by name
select
    p.index_no,
    p.version,
    p.content_sha256,
    p.title,
    p.url,
    ctx.observed_at,
    ctx.run_id,
    p.extractor_version,
    case p.action when 'new' then 'new' else 'content_changed' end as change_kind,
    ctx.load_id
from load_plan as p
cross join load_context as ctx
where p.action in ('new', 'changed');
