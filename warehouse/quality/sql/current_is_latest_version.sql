-- The current row of reports equals the latest report_versions row (number and content).
with latest as (
    select index_no, version, content_sha256
    from report_versions
    qualify version = max(version) over (partition by index_no)
),
offending as (
    select r.index_no
    from reports as r
    left join latest as v using (index_no)
    where v.version is distinct from r.version
       or v.content_sha256 is distinct from r.content_sha256
)
select
    'current_is_latest_version' as check_name,
    case when count(*) = 0 then 'pass' else 'fail' end as status,
    count(*) as observed,
    0 as threshold,
    format('{} reports differ from their latest version, e.g. {}', count(*),
           coalesce(list_slice(list(index_no order by index_no), 1, 5), [])) as detail
from offending;
