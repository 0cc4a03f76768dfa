-- A report's section outline as an indented table of contents (current reports).
create or replace view report_outline as
select
    s.index_no,
    r.title,
    s.ordinal,
    s.section_id,
    s.level,
    repeat('  ', s.level) || concat_ws(' ', s.label, s.heading) as outline,
    s.kind,
    s.year
from sections as s
join reports as r using (index_no)
where r.superseded_by is null
order by s.index_no, s.ordinal;

comment on view report_outline is 'Section outline of every current report (not superseded) in document order; outline is the heading indented two spaces per level (select outline from report_outline where index_no = ...).';
comment on column report_outline.index_no is '索引号 of the report.';
comment on column report_outline.title is 'Report title.';
comment on column report_outline.ordinal is 'Position of the section in the document.';
comment on column report_outline.section_id is 'Dotted section path.';
comment on column report_outline.level is 'Outline depth (0 preamble).';
comment on column report_outline.outline is 'Indented label and heading, e.g. "    (一) 加快社会救助体系建设".';
comment on column report_outline.kind is 'summary | plan | problems | highlights; NULL if unknown.';
comment on column report_outline.year is 'Year the section is about; NULL if unknown.';
