-- After fetch-log rows are recorded (staged as stg_fetch_log): which links answer and which are
-- gone, for the links those rows are about. A link is asked for at its own URL, and at every
-- URL whose fetch was redirected to it; its answers are the fetch-log rows of those URLs:
--   good: fetched or not_modified (the page is there);
--   gone: 404/410, or a fetch redirected to the site's home page ($home_page, the final URL of a
--         request that was not for the home page itself);
--   anything else (a timeout, a 503 …) says nothing either way.
-- gone_at: the first gone answer after the last good one (NULL when none). Written only where
-- it changes; the reports of the links touched get their state again (sql/report_state.sql).
create or replace temp table gone_links as
with asked as (
    select index_no, url as link, url as asked from report_urls
    union
    select u.index_no, u.url, f.url
    from report_urls as u
    join fetch_log as f on f.final_url = u.url and f.outcome = 'fetched' and f.url <> u.url
),
news as (
    select url from stg_fetch_log
    union
    select final_url from stg_fetch_log where final_url is not null
),
affected as (
    select a.*
    from asked as a
    semi join (select index_no, link from asked where asked in (select url from news)) as n using (index_no, link)
),
answers as (
    select a.index_no, a.link, f.fetch_id, f.fetched_at,
           case
               when f.outcome = 'http_error' and f.status in (404, 410) then 'gone'
               when f.outcome = 'fetched' and f.final_url <> f.url and regexp_matches(f.final_url, $home_page, 'i')
                    and not regexp_matches(f.url, $home_page, 'i') then 'gone'
               when f.outcome in ('fetched', 'not_modified') then 'good'
           end as answer
    from affected as a
    join fetch_log as f on f.url = a.asked
),
last_good as (
    select index_no, link, max(fetch_id) filter (where answer = 'good') as good_id
    from answers
    group by index_no, link
)
select g.index_no, g.link as url,
       min(a.fetched_at) filter (where a.answer = 'gone' and a.fetch_id > coalesce(g.good_id, -1)) as gone_at
from last_good as g
left join answers as a using (index_no, link)
group by g.index_no, g.link;

update report_urls as u
set gone_at = g.gone_at
from gone_links as g
where u.index_no = g.index_no and u.url = g.url and u.gone_at is distinct from g.gone_at;

create or replace temp table history_touched as
select distinct index_no from gone_links;
