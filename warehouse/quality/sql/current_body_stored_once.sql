-- A report's current body is stored once, in reports.body_text (migration 0014): the row of its
-- current version in report_versions holds none. A second copy would mean a load that
-- wrote the old way, or a version row edited by hand.
with offending as (
    select v.index_no
    from report_versions as v
    join reports as r on r.index_no = v.index_no and r.version = v.version
    where v.body_text is not null
)
select
    'current_body_stored_once' as check_name,
    case when count(*) = 0 then 'pass' else 'fail' end as status,
    count(*) as observed,
    0 as threshold,
    format('{} reports hold their current body twice (reports and report_versions), e.g. {}', count(*),
           coalesce(list_slice(list(index_no order by index_no), 1, 5), [])) as detail
from offending;
