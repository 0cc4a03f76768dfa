-- Step 1 of a load: decide what happens to each 索引号 of the batch.
-- Inputs (staged by warehouse/load.py): stg_reports (one row per accepted page, with
-- page_idx and fetched_at) and load_context (run_id, load_id, observed_at).
-- Several pages with the same 索引号 are one report: the latest fetch represents it.
create or replace temp table load_plan as
with winners as (
    select *
    from stg_reports
    qualify row_number() over (
        partition by index_no order by fetched_at desc nulls last, page_idx desc) = 1
),
classified as (
    select
        w.*,
        case
            when r.index_no is null then 'new'
            when r.content_sha256 <> w.content_sha256 then 'changed'
            when r.extractor_version is distinct from w.extractor_version then 'reextracted'
            else 'unchanged'
        end as action,
        r.version as stored_version,
        r.url as stored_url,
        r.first_seen_at as stored_first_seen_at
    from winners as w
    left join reports as r using (index_no)
)
select
    *,
    case action when 'new' then 1 when 'changed' then stored_version + 1
        else stored_version end as version
from classified;

-- Reports whose extraction is written by this load: their children are replaced.
create or replace temp table touched_reports as
select index_no from load_plan where action <> 'unchanged';
