-- Step 3b (when sql/moves.sql found links that change): a URL now stating another key moves
-- its links there; its link to the key it states is live again.
update report_urls as u
set moved_to = b.index_no, moved_at = ctx.observed_at, load_id = ctx.load_id
from batch_pages as b, load_context as ctx
where b.latest_of_url and u.url = b.url and u.index_no <> b.index_no
  and u.moved_to is distinct from b.index_no;

update report_urls as u
set moved_to = null, moved_at = null, gone_at = null, load_id = ctx.load_id
from batch_pages as b, load_context as ctx
where b.latest_of_url and u.url = b.url and u.index_no = b.index_no
  and (u.moved_to is not null or u.gone_at is not null);
