-- Counts (people, households, beds, items, ...: dimension 'count' in unit_vocabulary)
-- are never negative; a minus sign is a misread dash or range. Current reports.
with offending as (
    select m.index_no, m.ordinal, m.text
    from metrics as m semi join (select index_no from reports where superseded_by is null) as cur using (index_no)
    join unit_vocabulary as u using (unit_norm)
    where u.dimension = 'count' and (m.value_norm < 0 or m.value_high_norm < 0)
)
select
    'metrics_no_negative_counts' as check_name,
    case when count(*) = 0 then 'pass' else 'fail' end as status,
    count(*) as observed,
    0 as threshold,
    format('{} negative counts, e.g. {}', count(*),
           coalesce(list_slice(list(index_no || '#' || ordinal || ' ' || text
                                    order by index_no, ordinal), 1, 5), [])) as detail
from offending;
