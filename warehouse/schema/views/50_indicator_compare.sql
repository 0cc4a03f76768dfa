-- Compare one indicator across regions for one year:
--   select * from indicator_compare('dibao_standard', 2022)
create or replace macro indicator_compare(indicator_code, yr) as table
select region, value_norm, unit_norm, sentence, index_no, title, n_values, disagree, converted
from indicator_by_region_year
where indicator = indicator_code and year = yr
order by value_norm desc nulls last, region;

comment on macro table indicator_compare is 'indicator_compare(indicator_code, year): one row per region with the value of that indicator in that year (region, value_norm, unit_norm, sentence, index_no, title, n_values, disagree, converted), highest first.';
