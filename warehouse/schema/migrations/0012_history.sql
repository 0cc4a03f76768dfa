-- Truthful history (issues 16.3, 17.2): a report that another took over, two pages stating one
-- 索引号, a page that went away. New columns at the end; NULL in every row loaded before,
-- which is what they mean there (current, live, never rekeyed).
--
-- * Superseded: every URL of a report now states another key (a CMS renumbered the page):
--   the report is kept with its history and its links, and superseded_by names the report
--   that took its place. Views, checks and the export count only current reports
--   (superseded_by IS NULL), so three pages stay three reports.
-- * Rekeyed: a report keyed by a stand-in (its document id or URL, key_kind) whose page now
--   states a 索引号 takes that key with its whole history, in the load that sees it;
--   former_key keeps the stand-in.
-- * Gone: every live URL of a report answers 404/410, or redirects to the site's home page,
--   in the fetch log: the report is kept, gone_at says since when; a page that answers
--   again clears it.
-- * Conflicts: a second page stating a 索引号 another page already states, with other
--   content: the page that stated it first keeps the report (no version flip-flop), the
--   other's content is recorded in report_conflicts.
alter table reports add column superseded_by varchar;
alter table reports add column superseded_at timestamp;
alter table reports add column gone_at timestamp;
alter table reports add column former_key varchar;
alter table report_urls add column moved_to varchar;
alter table report_urls add column moved_at timestamp;
alter table report_urls add column gone_at timestamp;

create table report_conflicts (
    index_no       varchar not null,
    url            varchar not null,
    owner_url      varchar not null,
    source         varchar not null,
    content_sha256 varchar not null,
    title          varchar,
    fetch_id       bigint,
    first_seen_at  timestamp not null,
    last_seen_at   timestamp not null,
    resolved_at    timestamp,
    run_id         varchar not null,
    load_id        varchar not null,
    primary key (index_no, url)
);

comment on column reports.superseded_by is 'Key (index_no) of the report that took this one''s place: every URL of this report now states that key. NULL while the report is current; views, checks and the export count current reports only.';
comment on column reports.superseded_at is 'When the last URL of this report was first seen stating another key (UTC); NULL while current.';
comment on column reports.gone_at is 'When the report''s page went away (UTC): since then every live URL of it answers 404/410 or redirects to the site''s home page (fetch_log). NULL while a URL of it still answers; cleared when one answers again. A gone report stays current: what it said was published.';
comment on column reports.former_key is 'The stand-in key (document id or URL, see key_kind) the report had until its page stated a 索引号 and the report took it, with its history; NULL if never rekeyed.';
comment on column report_urls.moved_to is 'Key the page at this URL states now, when it is no longer this report''s (a renumbered page); NULL while the URL serves this report. A report whose every URL moved is superseded (reports.superseded_by).';
comment on column report_urls.moved_at is 'When this URL was first seen stating moved_to (UTC); NULL while it serves this report.';
comment on column report_urls.gone_at is 'Since when this URL answers 404/410 or redirects to the site''s home page (the first such answer after its last good one, fetch_log); NULL while it answers.';

comment on table report_conflicts is 'Pages stating a 索引号 that another page (owner_url, the first to state it) already states, with other content: the owner keeps the report, the other''s content is recorded here instead of becoming a version (no flip-flop between the two). One row per (索引号, URL).';
comment on column report_conflicts.index_no is '索引号 both pages state (the report is owner_url''s).';
comment on column report_conflicts.url is 'URL of the page whose content was not loaded.';
comment on column report_conflicts.owner_url is 'URL of the page that keeps the report: of the report''s live URLs, the first seen.';
comment on column report_conflicts.source is 'Source the conflicting page was crawled from.';
comment on column report_conflicts.content_sha256 is 'SHA-256 of the conflicting page''s extracted content, when last seen.';
comment on column report_conflicts.title is 'Title on the conflicting page, when last seen; NULL if it had none.';
comment on column report_conflicts.fetch_id is 'Fetch (fetch_log.fetch_id) of the conflicting page last recorded; NULL if not known.';
comment on column report_conflicts.first_seen_at is 'When the conflict was first recorded (UTC).';
comment on column report_conflicts.last_seen_at is 'Last load that wrote this row: the conflicting content first seen, changed or seen again after being resolved (UTC).';
comment on column report_conflicts.resolved_at is 'When the URL was seen serving the report''s own content or another key (UTC); NULL while the conflict stands.';
comment on column report_conflicts.run_id is 'Flow run that last wrote this row.';
comment on column report_conflicts.load_id is 'Load that last wrote this row.';
