-- Every report has an outline: at least one section (the preamble "0" counts).
with offending as (
    select r.index_no
    from reports as r
    anti join sections as s using (index_no)
)
select
    'reports_have_sections' as check_name,
    case when count(*) = 0 then 'pass' else 'fail' end as status,
    count(*) as observed,
    0 as threshold,
    format('{} reports without sections, e.g. {}', count(*),
           coalesce(list_slice(list(index_no order by index_no), 1, 5), [])) as detail
from offending;
