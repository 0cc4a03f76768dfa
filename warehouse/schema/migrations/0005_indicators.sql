-- The indicator vocabulary (config/indicators.csv, reloaded whenever it changes), so that
-- analysts can read what metrics.indicator codes mean and filter by Chinese names.
create table indicators (
    code        varchar primary key,
    name_zh     varchar not null,
    unit_norms  varchar,
    pattern     varchar not null,
    description varchar
);

comment on table indicators is 'Canonical indicators that metrics.indicator refers to; loaded from config/indicators.csv (the extractor''s vocabulary).';
comment on column indicators.code is 'Indicator code stored in metrics.indicator, e.g. dibao_standard.';
comment on column indicators.name_zh is 'Chinese name, e.g. 城乡低保标准.';
comment on column indicators.unit_norms is 'unit_norm values a metric must have to get this code, separated by ";"; NULL: any unit.';
comment on column indicators.pattern is 'Regular expression matched against the metric subject (tasks/subjects.py).';
comment on column indicators.description is 'What the indicator measures, in English.';
