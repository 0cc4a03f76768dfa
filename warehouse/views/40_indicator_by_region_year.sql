-- One value per (region, indicator, year), ready to PIVOT:
--   pivot indicator_by_region_year on year using first(value_norm) group by region, indicator
create or replace view indicator_by_region_year as
with candidates as (
    select
        *,
        count(*) over (partition by region, indicator, year) as n_values,
        -- Which stated value represents the year: a current value over the old one of an
        -- old→new pair, then the latest report, then the first mention in it.
        row_number() over (
            partition by region, indicator, year
            order by (role = 'previous') nulls first, publish_date desc nulls last,
                     index_no desc, ordinal
        ) as pick
    from indicator_series
)
select region, indicator, year, value_norm, unit_norm, n_values, index_no, title, sentence
from candidates
where pick = 1;

comment on view indicator_by_region_year is 'One representative value per region, indicator and year (current over previous, latest report, first mention); n_values tells how many were stated. Pivot-friendly.';
comment on column indicator_by_region_year.region is 'Region.';
comment on column indicator_by_region_year.indicator is 'Canonical indicator code.';
comment on column indicator_by_region_year.year is 'Year the value refers to.';
comment on column indicator_by_region_year.value_norm is 'The representative normalised value.';
comment on column indicator_by_region_year.unit_norm is 'Its normalised unit.';
comment on column indicator_by_region_year.n_values is 'Values stated for this region, indicator and year (1 = unambiguous).';
comment on column indicator_by_region_year.index_no is '索引号 of the report the value comes from.';
comment on column indicator_by_region_year.title is 'Title of that report.';
comment on column indicator_by_region_year.sentence is 'Sentence the value stands in.';
