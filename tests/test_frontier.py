"""The crawl frontier in the raw archive: every link discovered, with its state, across runs.

What the flow makes of it (interrupted runs, failed listing pages, page budgets, gone
pages) is tested end to end in test_faults_flow.py; here, the states themselves, on both
backends (SQLite and PostgreSQL: tests/archive_backends.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
import pytest

from tasks import settings
from tasks.crawl.archive import RawArchive
from tasks.crawl.discover import Discovery, ListingPage
from tasks.records import FetchOutcome, FetchResult, ListingLink
from tests.archive_backends import archive_database, archive_location, query  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
LIST = "http://a/col/index.html"


def listing(url: str, *links: str, next_pages: tuple[str, ...] = (), declared: int | None = None) -> ListingPage:
    return ListingPage(url=url, links=[ListingLink(link, f"标题{link.rsplit('/', 1)[1]}", date(2024, 4, 1), url) for link in links],
                       next_pages=list(next_pages), declared_records=declared)  # fmt: skip


def result(url: str, outcome: FetchOutcome = FetchOutcome.FETCHED, status: int | None = 200,
           at: datetime = T0, reason: str | None = None) -> FetchResult:  # fmt: skip
    body = b"<html>report</html>" if outcome in (FetchOutcome.FETCHED, FetchOutcome.NON_HTML) else None
    return FetchResult(url=url, outcome=outcome, final_url=url, status=status, body=body, fetched_at=at,
                       content_type="text/html", reason=reason, attempts=1)  # fmt: skip


def states(archive: RawArchive, kind: str = "article") -> dict[str, str]:
    return {link.url: link.state for link in archive.frontier("s", kind)}


@pytest.fixture
def archive(archive_location):
    with RawArchive(archive_location) as opened:
        yield opened


def test_links_read_on_a_listing_page_are_pending_with_where_they_were_found(archive):
    archive.record_listing_page("run-1", "s", listing(LIST, "http://a/1", "http://a/2", next_pages=("http://a/p2",)))
    assert states(archive) == {"http://a/1": "pending", "http://a/2": "pending"}
    assert states(archive, "listing") == {LIST: "read", "http://a/p2": "pending"}
    (row,) = query(archive.location, "select found_on, title, listed_date, first_seen_run_id from frontier"
                                     " where url = ?", ("http://a/1",))  # fmt: skip
    assert row == (LIST, "标题1", "2024-04-01", "run-1")
    assert archive.frontier_urls() == {"http://a/1", "http://a/2"} and archive.links_known("s") == 2


def test_a_fetch_moves_a_link_through_fetched_to_loaded(archive):
    archive.record_listing_page("run-1", "s", listing(LIST, "http://a/1"))
    fetch_id = archive.record("run-1", "s", result("http://a/1"))
    assert states(archive) == {"http://a/1": "fetched"}
    archive.mark_loaded([fetch_id], "run-1")
    assert states(archive) == {"http://a/1": "loaded"} and archive.due_links("s", T0) == []
    archive.record("run-2", "s", FetchResult("http://a/1", FetchOutcome.NOT_MODIFIED, status=304, fetched_at=T0))
    assert states(archive) == {"http://a/1": "loaded"}  # a 304 confirms what is loaded


def test_links_left_pending_by_an_earlier_run_come_first(archive):
    archive.record_listing_page("run-1", "s", listing(LIST, "http://a/old-1", "http://a/old-2"))
    archive.record("run-1", "s", result("http://a/old-1"))  # the run was interrupted here
    archive.record_listing_page("run-2", "s", listing(LIST, "http://a/new", "http://a/old-1", "http://a/old-2"))
    assert archive.due_links("s", T0) == ["http://a/old-2", "http://a/new"]


def test_a_404_is_gone_until_its_back_off_and_a_503_is_retried_next_run(archive):
    archive.record_listing_page("run-1", "s", listing(LIST, "http://a/gone", "http://a/busy", "http://a/ok"))
    archive.record("run-1", "s", result("http://a/gone", FetchOutcome.HTTP_ERROR, 404, reason="HTTP 404 Not Found"),
                   gone_recheck_after=timedelta(days=7))  # fmt: skip
    archive.record("run-1", "s", result("http://a/busy", FetchOutcome.HTTP_ERROR, 503, reason="HTTP 503"))
    archive.record("run-1", "s", result("http://a/ok"))
    (gone,) = archive.frontier("s", "article", {"gone"})
    assert (gone.reason, gone.failures, gone.next_attempt_at) == ("HTTP 404 Not Found", 1, T0 + timedelta(days=7))
    assert archive.due_links("s", T0 + timedelta(hours=1)) == ["http://a/busy"]
    assert [link.url for link in archive.gone_waiting("s", T0 + timedelta(days=6))] == ["http://a/gone"]
    assert archive.due_links("s", T0 + timedelta(days=7, seconds=1)) == ["http://a/gone", "http://a/busy"]
    assert archive.gone_waiting("s", T0 + timedelta(days=8)) == []


def test_a_410_uses_the_default_back_off_and_a_gone_page_is_not_revalidated_meanwhile(archive):
    archive.record_listing_page("run-1", "s", listing(LIST, "http://a/1"))
    archive.mark_loaded([archive.record("run-1", "s", result("http://a/1"))], "run-1")
    later = T0 + timedelta(days=8)
    archive.record("run-2", "s", result("http://a/1", FetchOutcome.HTTP_ERROR, 410, at=later, reason="HTTP 410 Gone"))
    (gone,) = archive.frontier("s", "article", {"gone"})
    assert gone.next_attempt_at == later + timedelta(days=settings.GONE_RECHECK_AFTER_DAYS)
    assert archive.due_for_revalidation("s", timedelta(hours=0), later + timedelta(days=1)) == []


def test_pages_not_html_are_skipped_for_good_and_robots_refusals_asked_again(archive):
    archive.record_listing_page("run-1", "s", listing(LIST, "http://a/r.pdf", "http://a/private"))
    archive.record("run-1", "s", result("http://a/r.pdf", FetchOutcome.NON_HTML, reason="body is a PDF document"))
    archive.record("run-1", "s", result("http://a/private", FetchOutcome.SKIPPED_ROBOTS, None, reason="robots.txt"))
    assert states(archive) == {"http://a/r.pdf": "skipped", "http://a/private": "skipped"}
    assert archive.due_links("s", T0 + timedelta(hours=1)) == ["http://a/private"]


def test_listing_pages_that_failed_or_were_left_are_resumed_and_gone_ones_wait(archive):
    archive.record_listing_page("run-1", "s", listing(LIST, "http://a/1", next_pages=("http://a/p2", "http://a/p3")))
    archive.record_listing_failure("run-1", "s", result("http://a/p2", FetchOutcome.HTTP_ERROR, 503, reason="HTTP 503"))
    archive.record_listing_failure("run-1", "s", result("http://a/p9", FetchOutcome.HTTP_ERROR, 404, reason="HTTP 404"))
    walk = Discovery("s", pages_read=[LIST], errors=["http://a/p2", "http://a/p9"], pages_left=["http://a/p3"],
                     stop_reason="stopped after …")  # fmt: skip
    archive.finish_listing_walk("run-1", walk, at=T0)
    assert states(archive, "listing") == {LIST: "read", "http://a/p2": "failed", "http://a/p3": "pending",
                                          "http://a/p9": "gone"}  # fmt: skip
    assert archive.listing_resume("s", T0 + timedelta(hours=1)) == ["http://a/p2", "http://a/p3"]
    assert archive.listing_not_due("s", T0 + timedelta(hours=1)) == {"http://a/p9"}
    assert archive.walked_before("s")  # the pages it left are resumed: the next head walk may stop early
    assert [f["url"] for f in archive.fetch_log("run-1")] == ["http://a/p2", "http://a/p9"]  # in the fetch log too


def test_a_walk_that_stopped_at_known_pages_leaves_nothing_pending_and_counts_as_whole(archive):
    archive.record_listing_page("run-1", "s", listing(LIST, "http://a/1", next_pages=("http://a/p2",)))
    archive.finish_listing_walk("run-1", Discovery("s", pages_read=[LIST], not_needed=["http://a/p2"],
                                                   stop_reason="stopped after 1 …"))  # fmt: skip
    assert states(archive, "listing") == {LIST: "read", "http://a/p2": "skipped"}
    assert archive.listing_resume("s") == [] and archive.walked_before("s")
    archive.record_listing_page("run-2", "s", listing("http://a/p2", "http://a/2"))  # read once …
    archive.record_listing_page("run-3", "s", listing(LIST, "http://a/1", next_pages=("http://a/p2",)))  # … queued again
    assert archive.listing_resume("s") == ["http://a/p2"]  # an interrupted walk would leave it pending
    archive.finish_listing_walk("run-3", Discovery("s", pages_read=[LIST], not_needed=["http://a/p2"],
                                                   stop_reason="stopped after 1 …"))  # fmt: skip
    assert states(archive, "listing")["http://a/p2"] == "read"


def test_a_page_read_in_this_run_stays_read_when_a_later_page_links_back_to_it(archive):
    archive.record_listing_page("run-1", "s", listing(LIST, "http://a/1", next_pages=("http://a/p2",)))
    archive.record_listing_page("run-1", "s", listing("http://a/p2", "http://a/2", next_pages=(LIST,)))  # 首页
    archive.finish_listing_walk("run-1", Discovery("s", pages_read=[LIST, "http://a/p2"], stop_reason="end"))
    assert states(archive, "listing") == {LIST: "read", "http://a/p2": "read"} and archive.listing_resume("s") == []


def test_an_archive_from_before_the_frontier_is_migrated_with_its_known_pages(archive_location):
    with RawArchive(archive_location) as archive:  # pages fetched, then the archive taken back to schema version 1
        loaded = archive.record("run-1", "s", result("http://a/loaded"))
        archive.record("run-1", "s", result("http://a/waiting"))
        archive.record("run-1", "s", result("http://a/r.pdf", FetchOutcome.NON_HTML))
        archive.record("run-1", "s", result("http://a/down", FetchOutcome.HTTP_ERROR, 503))
        with archive._db.write() as tx:
            tx.execute("UPDATE fetches SET loaded_run_id = 'run-1' WHERE fetch_id = :id", {"id": loaded})
            tx.execute("DROP INDEX fetches_by_loaded_run")
            tx.execute("DROP TABLE frontier")
            tx.execute("DROP TABLE listing_walks")
            archive._db.set_schema_version(tx, 1)
    with RawArchive(archive_location) as archive:
        assert states(archive) == {"http://a/loaded": "loaded", "http://a/waiting": "fetched", "http://a/r.pdf": "skipped"}
        assert not archive.walked_before("s")  # so the first walk reads the whole listing
