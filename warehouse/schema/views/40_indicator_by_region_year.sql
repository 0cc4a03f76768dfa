-- One value per (region, indicator, year), ready to PIVOT:
--   pivot indicator_by_region_year on year using first(value_norm) group by region, indicator
--
-- The rule that picks a cell's value among the figures stated for it:
--   1. only figures the indicator's unit can state (value_std: 元/月 under a per-person
--      standard is per person, an annual standard /12 and flagged converted), of a year;
--      never the old side of an old→new pair, a removal, a target or a count summed over
--      several years (三年来累计), an amount of a single month (2020年12月…); and the extractor
--      gives a part of a figure, a cumulative count or a change no stock indicator;
--   2. the current side of a change first (提高至…), then a level, then an amount, a
--      count summed over years (三年来累计…) last;
--   3. the latest report; in it the first statement (a summary states its totals first;
--      a standard raised twice in a year, 提高至950元，12月提高至1041元, is an old→new pair).
-- n_values says how many figures were stated for the cell, disagree whether they differ.
create or replace view indicator_by_region_year as
with candidates as (
    select *
    from indicator_series
    where value_std is not null and year is not null
      and coalesce(role, '') <> 'previous'
      and coalesce(kind, '') not in ('removal', 'target')
      -- a count summed over several years (三年来累计…, 历年) is no year's figure
      and not (kind = 'cumulative' and regexp_matches(sentence, '(年来|以来|历年|至今)'))
      -- an amount of one month (2020年12月…发放) is no year's amount
      and not (kind = 'amount' and regexp_matches(sentence, '^\D{0,6}(19|20)\d{2}年\d{1,2}月(份)?[^至到起底末\-—~]'))
),
ranked as (
    select
        *,
        count(*) over cell as n_values,
        count(distinct value_std) over cell > 1 as disagree,
        row_number() over (
            partition by region, indicator, year
            order by (role = 'current') desc nulls last,
                     case kind when 'level' then 0 when 'amount' then 1 when 'cumulative' then 3 else 2 end,
                     publish_date desc nulls last, index_no desc, ordinal
        ) as pick
    from candidates
    window cell as (partition by region, indicator, year)
)
select region, indicator, year, value_std as value_norm, unit_std as unit_norm, converted, kind,
       n_values, disagree, index_no, title, sentence
from ranked
where pick = 1;

comment on view indicator_by_region_year is 'One value per region, indicator and year, picked by the rule in the view''s header (in the indicator''s one unit; current side of a change, then levels, then amounts; latest report, first statement); n_values and disagree tell how many figures were stated and whether they differ. Pivot-friendly.';
comment on column indicator_by_region_year.region is 'Region.';
comment on column indicator_by_region_year.indicator is 'Canonical indicator code.';
comment on column indicator_by_region_year.year is 'Year the value refers to.';
comment on column indicator_by_region_year.value_norm is 'The picked value, in unit_norm (the indicator''s one unit).';
comment on column indicator_by_region_year.unit_norm is 'The indicator''s unit: the first of indicators.unit_norms.';
comment on column indicator_by_region_year.converted is 'True when the value is an annual figure divided by 12.';
comment on column indicator_by_region_year.kind is 'What kind of figure the value is: level, amount, rate, share, change.';
comment on column indicator_by_region_year.n_values is 'Figures stated for this region, indicator and year (1 = unambiguous).';
comment on column indicator_by_region_year.disagree is 'True when the stated figures differ from one another: look at the sentences (indicator_series).';
comment on column indicator_by_region_year.index_no is 'Key of the report the value comes from.';
comment on column indicator_by_region_year.title is 'Title of that report.';
comment on column indicator_by_region_year.sentence is 'Sentence the value stands in.';
