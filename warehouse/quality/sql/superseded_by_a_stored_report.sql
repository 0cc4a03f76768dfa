-- A superseded report names the report that took its place, and that report is stored: the
-- views leave superseded reports out, so a dangling superseded_by would lose a report.
with offending as (
    select r.index_no, r.superseded_by
    from reports as r
    anti join reports as s on s.index_no = r.superseded_by
    where r.superseded_by is not null
)
select
    'superseded_by_a_stored_report' as check_name,
    case when count(*) = 0 then 'pass' else 'fail' end as status,
    count(*) as observed,
    0 as threshold,
    format('{} superseded reports name no stored report, e.g. {}', count(*),
           coalesce(list_slice(list(index_no || ' → ' || superseded_by order by index_no), 1, 5), [])) as detail
from offending;
