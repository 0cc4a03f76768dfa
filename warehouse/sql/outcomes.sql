-- Step last: what happened to each accepted page (page_idx), for LoadOutcome.
select
    s.page_idx,
    s.index_no,
    p.action,
    s.page_idx = p.page_idx as represents_report
from stg_reports as s
join load_plan as p using (index_no)
order by s.page_idx;
