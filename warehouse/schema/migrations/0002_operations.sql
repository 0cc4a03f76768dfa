-- Operational ledgers: flow runs, loads (one per load_pages call), the crawler's fetch
-- log, data-quality results, and the unit vocabulary the checks validate against.

create table runs (
    run_id       varchar primary key,
    flow_run_id  varchar,
    started_at   timestamp not null,
    finished_at  timestamp,
    status       varchar not null check (status in ('running', 'completed', 'failed')),
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
    message      varchar
);

create table run_sources (
    run_id       varchar not null,
    source       varchar not null,
    discovered   integer,
    fetched      integer,
    new          integer,
    changed      integer,
    unchanged    integer,
    not_modified integer,
    failed       integer,
    skipped      integer,
    rejected     integer,
    error        varchar,
    primary key (run_id, source)
);

create table loads (
    load_id     varchar primary key,
    run_id      varchar not null,
    started_at  timestamp not null,
    finished_at timestamp not null,
    pages       integer not null,
    new         integer not null,
    changed     integer not null,
    unchanged   integer not null,
    reextracted integer not null,
    rejected    integer not null
);

create table fetch_log (
    run_id        varchar,
    fetch_id      bigint primary key,
    source        varchar,
    url           varchar not null,
    final_url     varchar,
    outcome       varchar not null,
    status        integer,
    reason        varchar,
    attempts      integer,
    retry_reasons json,
    elapsed_s     double,
    fetched_at    timestamp,
    size          bigint
);

create table dq_results (
    run_id     varchar not null,
    check_name varchar not null,
    status     varchar not null check (status in ('pass', 'warn', 'fail')),
    observed   double,
    threshold  double,
    detail     varchar,
    checked_at timestamp not null,
    primary key (run_id, check_name)
);

-- Filled from warehouse/seeds/unit_vocabulary.csv (the one list of allowed unit_norm).
create table unit_vocabulary (
    unit_norm   varchar primary key,
    dimension   varchar not null,
    description varchar not null
);
