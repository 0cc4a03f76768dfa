-- Step 8: pages stating a key another page keeps, with other content (other_pages, not
-- same_content): recorded in report_conflicts, and in rejects (reason conflict), never loaded
-- as a version. A known conflict is written again only when what it says changed, its owner
-- changed, or it had been resolved; a conflict whose URL now serves its report's content, or
-- another key, is resolved. (MERGE: a lake has no key for ON CONFLICT, warehouse/backend/lake.py.)
merge into report_conflicts as c
using (
    select o.index_no, o.url, o.owner_url, o.source, o.content_sha256, o.title, o.fetch_id,
           ctx.observed_at as first_seen_at, ctx.observed_at as last_seen_at, null::timestamp as resolved_at,
           ctx.run_id, ctx.load_id
    from other_pages as o
    cross join load_context as ctx
    where not o.same_content
) as s
on c.index_no = s.index_no and c.url = s.url
when matched and (c.content_sha256 <> s.content_sha256 or c.owner_url <> s.owner_url or c.resolved_at is not null)
then update set
    owner_url = s.owner_url, source = s.source, content_sha256 = s.content_sha256,
    title = s.title, fetch_id = s.fetch_id, last_seen_at = s.last_seen_at,
    resolved_at = null, run_id = s.run_id, load_id = s.load_id
when not matched then insert by name;

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
