-- Percentages within sane bounds. Completion rates such as 500% occur in these reports,
-- so the limit is generous; anything outside 0-1000% is more likely a misread number.
-- Current reports.
with params as (
    select 0.0 as low, 1000.0 as high
),
offending as (
    select m.index_no, m.ordinal, m.text
    from metrics as m semi join (select index_no from reports where superseded_by is null) as cur using (index_no), params as p
    where m.unit_norm = 'percent'
      and (m.value_norm not between p.low and p.high
           or m.value_high_norm not between p.low and p.high)
)
select
    'metrics_percent_in_bounds' as check_name,
    case when count(*) = 0 then 'pass' else 'warn' end as status,
    count(*) as observed,
    (select high from params) as threshold,
    format('{} percentages outside 0-1000%, e.g. {}', count(*),
           coalesce(list_slice(list(index_no || '#' || ordinal || ' ' || text
                                    order by index_no, ordinal), 1, 5), [])) as detail
from offending;
