-- Step last: what happened to each accepted page (page_idx), for LoadOutcome: the action of
-- the page representing its key; unchanged for one more URL of a report (duplicate_in_batch
-- when the page representing it is in the batch) and for a URL's older fetches; rejected for
-- a conflict.
select
    b.page_idx,
    b.index_no,
    case
        when p.page_idx is not null then case p.action when 'reextracted' then 'unchanged' else p.action end
        when not coalesce(o.same_content, true) then 'rejected'
        else 'unchanged'
    end as status,
    case
        when p.page_idx is not null then
            case when p.action = 'reextracted' then 'reextracted' when k.new_key is not null then 'rekeyed' end
        when not coalesce(o.same_content, true) then 'conflict'
        when o.page_idx is not null and not o.owner_in_batch then null
        else 'duplicate_in_batch'
    end as reason
from batch_pages as b
left join load_plan as p using (page_idx)
left join other_pages as o using (page_idx)
left join rekeys as k on k.new_key = b.index_no
order by b.page_idx;
