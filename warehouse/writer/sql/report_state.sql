-- Step last but one: superseded and gone, recomputed from the links of the reports this load
-- or this fetch log touched (temp table history_touched). A report is superseded when every
-- URL of it now states another key (superseded_by: the key its last URL moved to), gone when
-- it is current and every live URL of it is gone (gone_at: when the last one went).
-- Decided here, from the few columns it needs (state_changes: the reports whose state
-- changes); sql/report_state_update.sql writes them, and runs only if there are any: on a
-- lake an UPDATE reads and rewrites whole rows, bodies included.
create or replace temp table state_changes as
select r.index_no, s.superseded_by, s.superseded_at, s.gone_at
from (
    select index_no,
           case when live = 0 then moved_to end as superseded_by,
           case when live = 0 then moved_at end as superseded_at,
           case when live > 0 and answering = 0 then gone_at end as gone_at
    from (
        select index_no,
               count(*) filter (where moved_to is null) as live,
               arg_max(moved_to, moved_at) as moved_to,
               max(moved_at) as moved_at,
               count(*) filter (where moved_to is null and gone_at is null) as answering,
               max(gone_at) filter (where moved_to is null) as gone_at
        from report_urls
        where index_no in (select index_no from history_touched)
        group by index_no
    )
) as s
join reports as r using (index_no)
where r.superseded_by is distinct from s.superseded_by or r.superseded_at is distinct from s.superseded_at
   or r.gone_at is distinct from s.gone_at;
