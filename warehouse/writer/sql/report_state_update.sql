-- Write the states sql/report_state.sql decided (temp table state_changes).
update reports as r
set superseded_by = s.superseded_by, superseded_at = s.superseded_at, gone_at = s.gone_at
from state_changes as s
where r.index_no = s.index_no;
