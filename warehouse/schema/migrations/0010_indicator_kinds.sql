-- Which kinds of figure an indicator accepts (config/indicators.csv, column kinds): a count
-- of removals, a cumulative count or a part never feeds a stock indicator.
alter table indicators add column kinds varchar;

comment on column indicators.kinds is 'Kinds of figure (metrics.kind) this indicator accepts, separated by ";": level, amount, change, share …; NULL: any kind.';
