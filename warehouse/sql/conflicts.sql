-- Step 8: pages stating a key another page keeps, with other content (other_pages, not
-- same_content): recorded in report_conflicts, and in rejects (reason conflict), never loaded
-- as a version. A known conflict is written again only when what it says changed, its owner
-- changed, or it had been resolved; a conflict whose URL now serves its report's content, or
-- another key, is resolved.
insert into report_conflicts by name
select o.index_no, o.url, o.owner_url, o.source, o.content_sha256, o.title, o.fetch_id,
       ctx.observed_at as first_seen_at, ctx.observed_at as last_seen_at, null as resolved_at,
       ctx.run_id, ctx.load_id
from other_pages as o
cross join load_context as ctx
where not o.same_content
on conflict (index_no, url) do update set
    owner_url = excluded.owner_url, source = excluded.source, content_sha256 = excluded.content_sha256,
    title = excluded.title, fetch_id = excluded.fetch_id, last_seen_at = excluded.last_seen_at,
    resolved_at = null, run_id = excluded.run_id, load_id = excluded.load_id
where report_conflicts.content_sha256 <> excluded.content_sha256
   or report_conflicts.owner_url <> excluded.owner_url
   or report_conflicts.resolved_at is not null;

update report_conflicts as c
set resolved_at = ctx.observed_at, run_id = ctx.run_id, load_id = ctx.load_id
from batch_pages as b, load_context as ctx
where b.latest_of_url and c.url = b.url and c.resolved_at is null
  and not exists (select 1 from other_pages as o
                  where o.url = c.url and o.index_no = c.index_no and not o.same_content);

insert into rejects by name
select ctx.run_id, o.source, o.page_url as url, o.fetch_id, o.raw_sha256, 'conflict' as reason,
       format('The page states 索引号 {}, which {} stated first with other content: that page keeps '
              'the report; this one''s content is recorded in report_conflicts, not loaded as a version.',
              o.index_no, o.owner_url) as detail,
       ctx.observed_at, o.url as final_url, ctx.load_id
from other_pages as o
cross join load_context as ctx
where not o.same_content
  and not exists (select 1 from rejects as r where r.url = o.page_url and r.raw_sha256 = o.raw_sha256);
