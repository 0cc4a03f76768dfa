-- Run states that tell the truth (issue 17): besides running, completed and failed, a run is
-- 'partial' (it completed, but some of its sources failed: run_sources.error says which and
-- why) or 'interrupted' (stopped by SIGINT or SIGTERM; the message says what it kept and what
-- the next run does). DuckDB cannot alter a CHECK constraint, so the table is rebuilt: same
-- columns, same order, same rows; its comments are set again (the status one updated).
create table runs_0011 (
    run_id       varchar primary key,
    flow_run_id  varchar,
    started_at   timestamp not null,
    finished_at  timestamp,
    status       varchar not null check (status in ('running', 'completed', 'partial', 'failed', 'interrupted')),
    parameters   json,
    discovered   integer,
    fetched      integer,
    new          integer,
    changed      integer,
    unchanged    integer,
    not_modified integer,
    failed       integer,
    skipped      integer,
    rejected     integer,
    message      varchar,
    timings      json
);
insert into runs_0011 select * from runs;
drop table runs;
alter table runs_0011 rename to runs;

comment on table runs is 'One row per flow run, with its outcome counts.';
comment on column runs.run_id is 'Our run id.';
comment on column runs.flow_run_id is 'Prefect flow run id; NULL when run outside Prefect.';
comment on column runs.started_at is 'Start (UTC).';
comment on column runs.finished_at is 'End (UTC); NULL while running. A run whose process died is closed as failed by the next run, with that run''s start here.';
comment on column runs.status is 'running | completed | partial (completed; some sources failed, see run_sources.error) | failed (every source failed, nothing discoverable, or the run could not finish: message says why; also: abandoned, found still running by a later run) | interrupted (SIGINT or SIGTERM; message says what was kept).';
comment on column runs.parameters is 'Flow parameters as JSON.';
comment on column runs.discovered is 'Article URLs found on listing pages; NULL until the run finishes.';
comment on column runs.fetched is 'Pages fetched with a 200 HTML body; NULL until the run finishes.';
comment on column runs.new is 'Reports loaded for the first time; NULL until the run finishes.';
comment on column runs.changed is 'Reports whose content changed (new version); NULL until the run finishes.';
comment on column runs.unchanged is 'Pages whose content was already stored; NULL until the run finishes.';
comment on column runs.not_modified is 'Conditional GETs answered 304; NULL until the run finishes.';
comment on column runs.failed is 'URLs that failed to fetch or extract; NULL until the run finishes.';
comment on column runs.skipped is 'URLs skipped (robots.txt, known and fresh); NULL until the run finishes.';
comment on column runs.rejected is 'Pages quarantined in rejects; NULL until the run finishes.';
comment on column runs.message is 'Summary or error message; NULL if none.';
comment on column runs.timings is 'Seconds per stage of the run (discover, fetch, extract, load, finalise and its parts), as a JSON object; NULL for runs that did not finish.';
