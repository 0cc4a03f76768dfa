-- Step 5: append a version row for every new report and every content change.
insert into report_versions by name
select
    p.index_no,
    p.version,
    p.content_sha256,
    p.title,
    p.url,
    p.body_text,
    ctx.observed_at,
    ctx.run_id,
    p.extractor_version,
    case p.action when 'new' then 'new' else 'content_changed' end as change_kind,
    ctx.load_id
from load_plan as p
cross join load_context as ctx
where p.action in ('new', 'changed');
