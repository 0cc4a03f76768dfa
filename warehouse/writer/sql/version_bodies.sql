-- Step 6a, run only when the load replaces the content of stored reports (replaced_versions,
-- sql/plan.sql): the body of each version replaced moves from reports (about to be overwritten
-- by sql/reports_replace.sql) into that version's row. The current version's body is stored once, in
-- reports (migration 0014).
update report_versions as v
set body_text = r.body_text
from replaced_versions as x, reports as r
where v.index_no = x.index_no and v.version = x.version
  and r.index_no = x.index_no;
