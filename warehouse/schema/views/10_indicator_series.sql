-- Metrics resolved to a canonical indicator, with the report and section they stand in:
-- the long table behind every time series and regional comparison. Current reports only: a
-- superseded report's figures are its successor's (reports.superseded_by).
create or replace view indicator_series as
with resolved as (
    select * from metrics where indicator is not null
),
-- Each indicator's one unit: the first of indicators.unit_norms. A per-person standard is
-- stated per person per month: 元/月 under it is per person, an annual one is /12 (converted).
standard_units as (
    select code, split_part(unit_norms, ';', 1) as unit_std from indicators
)
select
    r.region,
    m.indicator,
    coalesce(m.year, s.year) as year,  -- the metric's own year, else its section's
    m.value_norm,
    m.unit_norm,
    case
        -- a rate written as a fall (同比下降6.8%) is a negative growth rate
        when m.kind = 'rate' and u.unit_std = m.unit_norm
             and regexp_matches(m.sentence, '(下降|降低|减少|下跌|回落|降幅为?)\s*' || regexp_escape(m.text)) then -m.value_norm
        when u.unit_std = m.unit_norm then m.value_norm
        when u.unit_std = 'yuan/person/month' and m.unit_norm = 'yuan/month' then m.value_norm
        when u.unit_std = 'yuan/person/month' and m.unit_norm in ('yuan/person/year', 'yuan/year') then m.value_norm / 12
    end as value_std,
    u.unit_std,
    u.unit_std = 'yuan/person/month' and m.unit_norm in ('yuan/person/year', 'yuan/year') as converted,
    m.kind,
    m.scope,
    m.index_no,
    r.title,
    m.section_id,
    s.heading,
    m.sentence,
    m.qualifier,
    m.role,
    m.value_high_norm,
    m.ordinal,
    r.publish_date,
    i.name_zh as indicator_name,
    m.subject,
    m.text
from resolved as m
join reports as r using (index_no)
left join standard_units as u on u.code = m.indicator
left join sections as s on s.index_no = m.index_no and s.section_id = m.section_id
left join indicators as i on i.code = m.indicator
where r.superseded_by is null;

comment on view indicator_series is 'Metrics with a non-null indicator joined to their report and section: one row per stated value, of current reports (not superseded). year is the metric year, else the section year; value_std is the value in the indicator''s one unit (unit_std).';
comment on column indicator_series.value_std is 'The value in the indicator''s unit (unit_std): a 元/月 figure under a per-person standard read per person, an annual one divided by 12 (converted); NULL when the unit cannot be brought to it.';
comment on column indicator_series.unit_std is 'The indicator''s one unit: the first of indicators.unit_norms.';
comment on column indicator_series.converted is 'True when value_std is an annual figure divided by 12.';
comment on column indicator_series.kind is 'What kind of figure it is (metrics.kind): level, amount, rate, share, change, …';
comment on column indicator_series.scope is '城市 / 农村 / 城乡 where the sentence says so (metrics.scope).';
comment on column indicator_series.region is 'Region of the report (reports.region).';
comment on column indicator_series.indicator is 'Canonical indicator code.';
comment on column indicator_series.year is 'Year the value refers to: metrics.year, else sections.year; NULL if neither is known.';
comment on column indicator_series.value_norm is 'Normalised value (万/亿 applied), in unit_norm.';
comment on column indicator_series.unit_norm is 'Normalised unit (unit_vocabulary).';
comment on column indicator_series.index_no is '索引号 of the report.';
comment on column indicator_series.title is 'Report title.';
comment on column indicator_series.section_id is 'Section the value stands in.';
comment on column indicator_series.heading is 'Heading of that section.';
comment on column indicator_series.sentence is 'Sentence the value stands in, verbatim.';
comment on column indicator_series.qualifier is 'over | approx | ge | le; NULL when exact.';
comment on column indicator_series.role is 'previous | current for old→new pairs; NULL otherwise.';
comment on column indicator_series.value_high_norm is 'Upper end of a range; NULL for single values.';
comment on column indicator_series.ordinal is 'Position of the metric in the report.';
comment on column indicator_series.publish_date is 'Publication date of the report.';
comment on column indicator_series.indicator_name is 'Chinese name of the indicator (indicators.name_zh).';
comment on column indicator_series.subject is 'What the value measures, as phrased on the page (metrics.subject).';
comment on column indicator_series.text is 'The quantity as written on the page, e.g. 950元/人/月.';
