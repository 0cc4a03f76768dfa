-- Core data: one row per report (keyed by its 索引号), its content history, its URLs,
-- and what was extracted from its current version. All TIMESTAMP columns are UTC.
-- New columns go at the END of a table, in a later migration (ALTER TABLE ... ADD COLUMN).
-- No FOREIGN KEYs: DuckDB checks them eagerly inside a transaction, which would forbid the
-- loader's delete-then-insert of children; orphans are caught by checks/orphan_children.sql.

create table reports (
    index_no          varchar primary key,
    source            varchar not null,
    region            varchar,
    url               varchar not null,
    title             varchar,
    publisher         varchar,
    publish_date      date,
    written_date      date,
    doc_number        varchar,
    topic             varchar,
    category          varchar,
    disclosure_mode   varchar,
    disclosure_scope  varchar,
    summary_year      integer,
    plan_year         integer,
    body_text         varchar,
    content_sha256    varchar not null,
    first_seen_at     timestamp not null,
    updated_at        timestamp not null,
    extractor_version varchar,
    version           integer not null,
    run_id            varchar not null,
    load_id           varchar not null
);

create table report_versions (
    index_no          varchar not null,
    version           integer not null,
    content_sha256    varchar not null,
    title             varchar,
    url               varchar not null,
    body_text         varchar,
    observed_at       timestamp not null,
    run_id            varchar not null,
    extractor_version varchar,
    change_kind       varchar not null check (change_kind in ('new', 'content_changed')),
    load_id           varchar not null,
    primary key (index_no, version)
);

create table report_urls (
    index_no      varchar not null,
    url           varchar not null,
    source        varchar not null,
    first_seen_at timestamp not null,
    last_seen_at  timestamp not null,
    load_id       varchar not null,
    primary key (index_no, url)
);

create table sections (
    index_no   varchar not null,
    section_id varchar not null,
    parent_id  varchar,
    level      integer not null,
    label      varchar,
    heading    varchar,
    text       varchar not null,
    ordinal    integer not null,
    kind       varchar,
    year       integer,
    load_id    varchar not null,
    primary key (index_no, section_id)
);

create table metrics (
    index_no        varchar not null,
    section_id      varchar,
    value           double not null,
    value_high      double,
    unit            varchar,
    value_norm      double,
    unit_norm       varchar,
    qualifier       varchar,
    subject         varchar,
    sentence        varchar,
    ordinal         integer not null,
    value_high_norm double,
    role            varchar,
    counter         varchar,
    indicator       varchar,
    year            integer,
    text            varchar,
    load_id         varchar not null,
    primary key (index_no, ordinal)
);

create table ranks (
    index_no   varchar not null,
    section_id varchar,
    ordinal    integer not null,
    rank       integer not null,
    scope      varchar,
    subject    varchar,
    tied       boolean not null,
    text       varchar,
    sentence   varchar,
    load_id    varchar not null,
    primary key (index_no, ordinal)
);

create table rejects (
    run_id      varchar not null,
    source      varchar not null,
    url         varchar not null,
    fetch_id    bigint,
    raw_sha256  varchar not null,
    reason      varchar not null,
    detail      varchar not null,
    observed_at timestamp not null,
    final_url   varchar,
    load_id     varchar not null,
    primary key (url, raw_sha256)
);
