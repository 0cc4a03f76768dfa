-- What a figure is, and what a report's key is (tasks/records.py: Metric.kind, Metric.scope,
-- Report.key_kind, filled by the extractor). New columns at the end; NULL in rows loaded
-- before (a reprocess fills them).
alter table metrics add column kind varchar;
alter table metrics add column scope varchar;
alter table reports add column key_kind varchar;

comment on column metrics.kind is 'What kind of quantity the figure is: level | amount | cumulative | change | rate | share | part | removal | target | other; NULL when loaded before the extractor said (reprocess fills it).';
comment on column metrics.scope is 'Scope the sentence gives this figure: 城市 | 农村 | 城乡; NULL where it gives none.';
comment on column reports.key_kind is 'What index_no holds: index_no (the page''s 索引号), document_id (the CMS document id) or url (its canonical URL), where the page states no 索引号; NULL when loaded before the extractor said.';
