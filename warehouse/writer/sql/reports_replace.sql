-- Step 6b, run only when the load touches reports stored before (replaced_reports, sql/plan.sql):
-- their current rows (sql/reports.sql: report_rows) replace the stored ones. MERGE rather than
-- INSERT OR REPLACE: a lake has no primary key to replace on (warehouse/backend/lake.py).
merge into reports as r
using (select * exclude (action) from report_rows where action <> 'new') as s
on r.index_no = s.index_no
when matched then update by name;
