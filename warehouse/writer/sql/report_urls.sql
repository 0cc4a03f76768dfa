-- Step 7: every URL of the batch that serves its report (the page representing it, and pages
-- with the same content; not conflicts), once per key. Known pairs of touched reports get
-- last_seen_at; unknown pairs are inserted; pairs of unchanged reports are left alone, so a
-- re-run over unchanged pages writes nothing.
create or replace temp table batch_urls as
select index_no, url, arg_max(source, fetched_at) as source
from (
    select index_no, url, source, fetched_at from load_plan
    union all
    select index_no, url, source, fetched_at from other_pages where same_content
)
group by index_no, url;

update report_urls as u
set last_seen_at = ctx.observed_at, load_id = ctx.load_id
from batch_urls as b, touched_reports as t, load_context as ctx
where u.index_no = b.index_no and u.url = b.url and t.index_no = b.index_no;

insert into report_urls by name
select b.index_no, b.url, b.source,
       ctx.observed_at as first_seen_at, ctx.observed_at as last_seen_at, ctx.load_id
from batch_urls as b
anti join report_urls as u using (index_no, url)
cross join load_context as ctx;

drop table batch_urls;
