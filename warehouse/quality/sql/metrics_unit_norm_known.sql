-- Every normalised unit is in the vocabulary (warehouse/schema/seeds/unit_vocabulary.csv). NULL means
-- "not normalisable" and is allowed. Current reports.
with offending as (
    select m.unit_norm, count(*) as n
    from metrics as m semi join (select index_no from reports where superseded_by is null) as cur using (index_no)
    anti join unit_vocabulary as u using (unit_norm)
    where m.unit_norm is not null
    group by m.unit_norm
)
select
    'metrics_unit_norm_known' as check_name,
    case when count(*) = 0 then 'pass' else 'fail' end as status,
    coalesce(sum(n), 0) as observed,
    0 as threshold,
    format('{} metrics with units outside unit_vocabulary: {}', coalesce(sum(n), 0),
           coalesce(list_slice(list(unit_norm || ' ×' || n order by n desc, unit_norm), 1, 10),
                    [])) as detail
from offending;
