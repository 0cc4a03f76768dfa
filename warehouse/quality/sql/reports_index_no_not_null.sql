-- Every report has a non-blank 索引号 (the loader quarantines keyless pages; this
-- guards against anything else writing to reports).
with offending as (
    select index_no from reports where index_no is null or trim(index_no) = ''
)
select
    'reports_index_no_not_null' as check_name,
    case when count(*) = 0 then 'pass' else 'fail' end as status,
    count(*) as observed,
    0 as threshold,
    format('{} reports without a 索引号', count(*)) as detail
from offending;
