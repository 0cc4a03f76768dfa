-- Two pages stating one 索引号 with different content: the first keeps the report, the other's
-- content is in report_conflicts (warehouse/writer/history.py). A warning: nothing is lost or counted
-- twice, but one of the two pages says something the warehouse does not hold as a version.
with open_conflicts as (
    select index_no, url, owner_url from report_conflicts where resolved_at is null
)
select
    'report_conflicts_unresolved' as check_name,
    case when count(*) = 0 then 'pass' else 'warn' end as status,
    count(*) as observed,
    0 as threshold,
    format('{} pages state a 索引号 another page keeps, with other content (report_conflicts), e.g. {}', count(*),
           coalesce(list_slice(list(index_no || ': ' || url || ' (kept by ' || owner_url || ')'
                                    order by index_no, url), 1, 5), [])) as detail
from open_conflicts;
