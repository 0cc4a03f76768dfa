-- Sections, metrics, ranks and URLs all belong to a stored report.
with children as (
    select index_no from sections
    union all select index_no from metrics
    union all select index_no from ranks
    union all select index_no from report_urls
),
offending as (
    select distinct c.index_no from children as c anti join reports as r using (index_no)
)
select
    'orphan_children' as check_name,
    case when count(*) = 0 then 'pass' else 'fail' end as status,
    count(*) as observed,
    0 as threshold,
    format('{} 索引号 have child rows but no report, e.g. {}', count(*),
           coalesce(list_slice(list(index_no order by index_no), 1, 5), [])) as detail
from offending;
