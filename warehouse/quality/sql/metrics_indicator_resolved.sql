-- Share of metrics resolved to a canonical indicator. Low means the indicator dictionary
-- (config/indicators.csv) misses subjects the reports commonly state: a warning, not an error.
-- Metrics of current reports (a superseded report's are its successor's).
with params as (
    select 0.05 as threshold
),
ratio as (
    select count(indicator) / nullif(count(*), 0) as resolved, count(*) as n
    from metrics as m semi join (select index_no from reports where superseded_by is null) as cur using (index_no)
)
select
    'metrics_indicator_resolved' as check_name,
    case when r.n = 0 or r.resolved >= p.threshold then 'pass' else 'warn' end as status,
    r.resolved as observed,
    p.threshold,
    format('{} of {} metrics have an indicator', coalesce(round(r.resolved * r.n), 0)::bigint, r.n) as detail
from ratio as r, params as p;
