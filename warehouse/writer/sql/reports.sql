-- Step 6: write the current row of every touched report. first_seen_at and the history
-- columns survive from the stored row (sql/report_state.sql changes those from the links); a
-- re-extraction keeps the URL of the version it re-extracted (so the current row still equals
-- the latest version). Unchanged reports are not written at all.
-- A report new to the warehouse is appended; only reports stored before are merged
-- (sql/reports_replace.sql): a MERGE of every touched report was the load's highest memory
-- (it joins its source, bodies and all, with reports; BENCHMARKS.md).
create or replace temp view report_rows as
select
    p.index_no,
    p.action,
    p.source,
    p.region,
    case p.action when 'reextracted' then p.stored_url else p.url end as url,
    p.title,
    p.publisher,
    p.publish_date,
    p.written_date,
    p.doc_number,
    p.topic,
    p.category,
    p.disclosure_mode,
    p.disclosure_scope,
    p.summary_year,
    p.plan_year,
    p.body_text,
    p.content_sha256,
    coalesce(p.stored_first_seen_at, ctx.observed_at) as first_seen_at,
    ctx.observed_at as updated_at,
    p.extractor_version,
    p.version,
    ctx.run_id,
    ctx.load_id,
    p.key_kind,
    p.stored_superseded_by as superseded_by,
    p.stored_superseded_at as superseded_at,
    p.stored_gone_at as gone_at,
    p.stored_former_key as former_key
from load_plan as p
cross join load_context as ctx
where p.action <> 'unchanged';

insert into reports by name
select * exclude (action) from report_rows where action = 'new';
