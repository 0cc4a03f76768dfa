-- Step 1, when every key of the batch is stored already (the usual batch): no page can take
-- over a report or be adopted by one (sql/keys.sql), so each page keeps its extracted key.
create or replace temp table rekeys as
select null::varchar as old_key, null::varchar as new_key, null::bigint as page_idx where false;

create or replace temp table page_keys as
select page_idx, index_no, key_kind, false as adopted from stg_reports;
