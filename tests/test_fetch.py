"""Fault-injection tests for tasks.crawl.fetch against the loopback FaultServer: one test per fault."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tasks.crawl.encoding import decode_html
from tasks.crawl.fetch import Fetcher
from tasks.crawl.ratelimit import HostRateLimiter
from tasks.records import FetchOutcome, FetchResult, Source
from tests.faultserver import CAP_FOR_TESTS, GBK_TEXT, GZIP_BOMB, PAGE_HTML, PDF_BODY, FaultServer

pytestmark = pytest.mark.timeout(20)

# Small limits so that every fault resolves in well under a second or two.
FAST = dict(
    connect_timeout=1.0, read_timeout=1.0, deadline=3.0, retry_times=3, backoff_factor=0.01,
    backoff_jitter=0.01, backoff_max=0.1, retry_after_max=5.0, max_bytes=CAP_FOR_TESTS,
)  # fmt: skip


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def make_source(server: FaultServer, rate: float = 0) -> Source:
    return Source(name="test", region="test", listing_urls=(server.url("/page"),),
                  allowed_hosts=("127.0.0.1",), rate_limit_per_second=rate)  # fmt: skip


@pytest.fixture
def fetch(server: FaultServer) -> Iterator[Callable[..., FetchResult]]:
    """fetch(path, **fetch_kwargs) with a rate-limit-free Fetcher using FAST limits."""
    with Fetcher(make_source(server), rate_limiter=HostRateLimiter(), **FAST) as fetcher:
        yield lambda path, **kwargs: fetcher.fetch(server.url(path), **kwargs)


def timed(call: Callable[[], FetchResult]) -> tuple[FetchResult, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# --- success paths ---------------------------------------------------------------------
def test_plain_page_is_fetched(fetch, server):
    result = fetch("/page")
    assert result.outcome is FetchOutcome.FETCHED and result.ok
    assert result.body == PAGE_HTML and result.status == 200
    assert result.final_url == server.url("/page") and result.attempts == 1 and result.retry_reasons == {}
    assert result.content_type == "text/html; charset=utf-8" and result.sha256 and result.reason is None
    assert result.fetched_at is not None and result.elapsed_s >= 0


def test_gzip_body_is_decoded(fetch):
    assert fetch("/gzip-page").body == PAGE_HTML


def test_user_agent_is_sent_for_pages_and_robots(server):
    seen: list[str] = []

    def record_agent(req, hit):
        seen.append(req.headers["User-Agent"])
        req.send(200, b"User-agent: *\nDisallow:\n", "text/plain")

    server.routes["/robots.txt"] = record_agent
    server.routes["/whoami"] = record_agent
    with Fetcher(make_source(server), rate_limiter=HostRateLimiter(), user_agent="govetl-test/1", **FAST) as fetcher:
        fetcher.fetch(server.url("/whoami"))
    assert seen == ["govetl-test/1", "govetl-test/1"]


# --- retries ---------------------------------------------------------------------------
def test_429_waits_for_retry_after_then_succeeds(fetch, server):
    result, elapsed = timed(lambda: fetch("/retry-after"))
    assert result.outcome is FetchOutcome.FETCHED
    assert result.attempts == 2 and result.retry_reasons == {"429": 1}
    assert server.hits("/retry-after") == 2
    assert elapsed >= 0.95  # Retry-After: 1 honoured
    arrivals = server.arrivals("/retry-after")
    assert arrivals[1] - arrivals[0] >= 0.95


def test_retry_after_longer_than_limit_gives_up_at_once(fetch, server):
    result, elapsed = timed(lambda: fetch("/retry-after-hour"))
    assert result.outcome is FetchOutcome.HTTP_ERROR and result.status == 503
    assert "Retry-After" in result.reason and "3600" in result.reason
    assert server.hits("/retry-after-hour") == 1 and result.attempts == 1
    assert elapsed < 1


def test_500_is_retried_then_succeeds(fetch, server):
    result = fetch("/error-then-ok")
    assert result.outcome is FetchOutcome.FETCHED and result.body == PAGE_HTML
    assert result.attempts == 2 and result.retry_reasons == {"500": 1}
    assert server.hits("/error-then-ok") == 2


def test_503_forever_gives_up_after_retry_times_with_backoff(server):
    options = {**FAST, "backoff_factor": 0.05, "backoff_jitter": 0.0, "backoff_max": 1.0}
    with Fetcher(make_source(server), rate_limiter=HostRateLimiter(), **options) as fetcher:
        result, elapsed = timed(lambda: fetcher.fetch(server.url("/unavailable")))
    assert result.outcome is FetchOutcome.HTTP_ERROR and result.status == 503
    assert result.attempts == 4 and server.hits("/unavailable") == 4
    assert result.retry_reasons == {"503": 3}
    assert "503" in result.reason and "4 attempts" in result.reason
    assert elapsed >= 0.1 + 0.2  # urllib3 backoff: 0, then 0.05·2, then 0.05·4 seconds
    assert fetcher.stats()["retry/reason_count/503"] == 3


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/forbidden", 403)])
def test_client_errors_are_final(fetch, server, path, status):
    result = fetch(path)
    assert result.outcome is FetchOutcome.HTTP_ERROR and result.status == status
    assert str(status) in result.reason and result.body is None
    assert result.attempts == 1 and server.hits(path) == 1


def test_retrying_stops_at_the_deadline(server):
    options = {**FAST, "deadline": 0.5, "backoff_factor": 1.0, "backoff_max": 5.0, "backoff_jitter": 0.0}
    with Fetcher(make_source(server), rate_limiter=HostRateLimiter(), **options) as fetcher:
        result, elapsed = timed(lambda: fetcher.fetch(server.url("/unavailable")))
    assert result.outcome is FetchOutcome.HTTP_ERROR and "deadline" in result.reason
    assert result.attempts == 2 and server.hits("/unavailable") == 2  # second backoff (2 s) refused
    assert elapsed < 1


# --- broken connections ----------------------------------------------------------------
def test_reset_before_response_is_retried_then_network_error(fetch, server):
    result = fetch("/reset")
    assert result.outcome is FetchOutcome.NETWORK_ERROR and result.body is None
    assert result.attempts == 4 and server.hits("/reset") == 4
    assert result.retry_reasons == {"ConnectionError": 3}
    assert "reset" in result.reason.lower() and "4 attempts" in result.reason


def test_reset_mid_body_keeps_no_partial_body(fetch, server):
    result = fetch("/reset-mid-body")
    assert result.outcome is FetchOutcome.NETWORK_ERROR and result.body is None and result.sha256 is None
    assert "truncated" in result.reason and "reset" in result.reason.lower()
    assert server.hits("/reset-mid-body") == 1


def test_truncated_body_is_network_error(fetch):
    result = fetch("/truncated")
    assert result.outcome is FetchOutcome.NETWORK_ERROR and result.body is None
    assert "truncated" in result.reason and "100 of 10000" in result.reason


def test_connection_refused_is_network_error(server):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with Fetcher(make_source(server), rate_limiter=HostRateLimiter(), **FAST) as fetcher:
        fetcher.fetch(server.url("/page"))  # warm robots.txt for the live port only
        result = fetcher.fetch(f"http://127.0.0.1:{closed_port}/page")
    assert result.outcome is FetchOutcome.NETWORK_ERROR and result.attempts == 4
    assert "could not connect" in result.reason


def test_dripping_body_is_cut_at_the_deadline(server):
    with Fetcher(make_source(server), rate_limiter=HostRateLimiter(), **{**FAST, "deadline": 1.0}) as fetcher:
        result, elapsed = timed(lambda: fetcher.fetch(server.url("/drip")))
    assert result.outcome is FetchOutcome.TIMEOUT and result.body is None
    assert "deadline" in result.reason
    assert 1.0 <= elapsed < 2.0  # one byte per 0.5 s never trips the 1 s read timeout


# --- size limits -----------------------------------------------------------------------
def test_gzip_bomb_stops_at_the_decoded_cap(fetch):
    result = fetch("/gzip-bomb")
    assert len(GZIP_BOMB) < 64 * 1024  # the wire size is small; only decoded bytes are large
    assert result.outcome is FetchOutcome.TOO_LARGE and result.body is None
    assert "decompression" in result.reason


def test_oversized_page_refused_by_content_length(fetch):
    result = fetch("/oversized")
    assert result.outcome is FetchOutcome.TOO_LARGE and result.body is None
    assert "Content-Length" in result.reason


def test_oversized_page_without_content_length_stopped_while_streaming(fetch):
    result = fetch("/oversized-unannounced")
    assert result.outcome is FetchOutcome.TOO_LARGE and result.body is None
    assert str(CAP_FOR_TESTS) in result.reason


# --- redirects -------------------------------------------------------------------------
def test_redirect_loop_is_cut(fetch, server):
    result = fetch("/redirect-loop")
    assert result.outcome is FetchOutcome.REDIRECT_LOOP
    assert "loop" in result.reason and server.url("/redirect-loop") in result.reason
    assert server.hits("/redirect-loop") == 1 and server.hits("/redirect-loop-b") == 1


def test_redirect_chain_within_the_limit_is_followed(fetch, server):
    result = fetch("/redirect-chain?n=5")
    assert result.outcome is FetchOutcome.FETCHED and result.final_url == server.url("/page")
    assert result.attempts == 6


def test_redirect_chain_over_the_limit_is_cut(fetch, server):
    result = fetch("/redirect-chain?n=6")
    assert result.outcome is FetchOutcome.REDIRECT_LOOP and "more than 5 redirects" in result.reason
    assert server.url("/page") in result.reason and server.hits("/page") == 0


def test_relative_redirect_is_resolved(fetch, server):
    result = fetch("/redirect-relative")
    assert result.outcome is FetchOutcome.FETCHED and result.final_url == server.url("/page")


def test_redirect_to_other_host_is_blocked_and_never_requested(fetch, server):
    result = fetch("/redirect-offsite")
    assert result.outcome is FetchOutcome.REDIRECT_BLOCKED
    assert server.url("/page", host="localhost") in result.reason and "allowed_hosts" in result.reason
    assert server.hits("/page") == 0  # localhost is this very server: it was not asked


def test_redirect_to_unroutable_host_is_blocked(fetch):
    result = fetch("/redirect-unroutable")
    assert result.outcome is FetchOutcome.REDIRECT_BLOCKED and "crawler-test.invalid" in result.reason


def test_allowed_hosts_compare_case_insensitively(server):
    source = Source(name="t", region="t", listing_urls=(server.url("/page"),), allowed_hosts=("LOCALHOST",),
                    rate_limit_per_second=0)  # fmt: skip
    with Fetcher(source, rate_limiter=HostRateLimiter(), **FAST) as fetcher:
        assert fetcher.fetch(server.url("/page", host="LocalHost")).outcome is FetchOutcome.FETCHED


def test_url_outside_the_source_is_a_caller_error(server):
    with Fetcher(make_source(server), rate_limiter=HostRateLimiter(), **FAST) as fetcher:
        with pytest.raises(ValueError, match="not an http"):
            fetcher.fetch("http://example.invalid/page")
    assert server.hits("/robots.txt") == 0


# --- robots.txt ------------------------------------------------------------------------
def test_robots_disallowed_url_is_never_requested(fetch, server):
    first, second = fetch("/private/report"), fetch("/private/report")
    assert first.outcome is second.outcome is FetchOutcome.SKIPPED_ROBOTS
    assert "robots" in first.reason and first.attempts == 0 and first.status is None
    assert server.hits("/private/report") == 0
    assert server.hits("/robots.txt") == 1  # one parser per host, cached
    assert fetch("/page").outcome is FetchOutcome.FETCHED


def test_redirect_into_a_disallowed_path_is_not_followed(fetch, server):
    result = fetch("/redirect-to-private")
    assert result.outcome is FetchOutcome.SKIPPED_ROBOTS and server.hits("/private/report") == 0


def test_robots_rules_match_our_user_agent(server):
    server.routes["/robots.txt"] = lambda req, hit: req.send(
        200, b"User-agent: govetl\nDisallow: /page\n\nUser-agent: *\nDisallow:\n", "text/plain"
    )
    with Fetcher(make_source(server), rate_limiter=HostRateLimiter(), user_agent="govetl/0.1 (+x)", **FAST) as fetcher:
        assert fetcher.fetch(server.url("/page")).outcome is FetchOutcome.SKIPPED_ROBOTS
    assert server.hits("/page") == 0


def test_missing_robots_allows_everything(fetch, server):
    del server.routes["/robots.txt"]  # → 404
    assert fetch("/private/report").outcome is FetchOutcome.FETCHED


def test_unreachable_robots_follows_the_policy_and_is_counted(server, caplog):
    server.routes["/robots.txt"] = lambda req, hit: req.reset_connection()
    with Fetcher(make_source(server), rate_limiter=HostRateLimiter(), **FAST) as fetcher:
        result = fetcher.fetch(server.url("/private/report"))
        assert fetcher.stats()["robots/unreachable"] == 1
    assert result.outcome is FetchOutcome.FETCHED  # settings.ROBOTS_UNREACHABLE_POLICY == "allow"
    assert any("robots.txt" in record.message and "unreachable" in record.message for record in caplog.records)


def test_unreachable_robots_with_deny_policy_skips(server):
    server.routes["/robots.txt"] = lambda req, hit: req.send(503, b"down")
    options = {**FAST, "robots_unreachable_policy": "deny"}
    with Fetcher(make_source(server), rate_limiter=HostRateLimiter(), **options) as fetcher:
        assert fetcher.fetch(server.url("/page")).outcome is FetchOutcome.SKIPPED_ROBOTS
    assert server.hits("/page") == 0 and server.hits("/robots.txt") == 4  # robots.txt is retried too


# --- content ---------------------------------------------------------------------------
def test_pdf_is_non_html_with_body_kept(fetch):
    result = fetch("/report.pdf")
    assert result.outcome is FetchOutcome.NON_HTML and not result.ok
    assert result.body == PDF_BODY and "PDF" in result.reason


def test_pdf_served_as_html_is_sniffed(fetch):
    result = fetch("/pdf-as-html")
    assert result.outcome is FetchOutcome.NON_HTML and "text/html" in result.reason and "PDF" in result.reason


def test_empty_200_is_not_a_success(fetch, server):
    server.routes["/empty"] = lambda req, hit: req.send(200, b"")
    result = fetch("/empty")
    assert result.outcome is FetchOutcome.HTTP_ERROR and "empty" in result.reason and result.body is None


def test_gbk_page_without_charset_decodes(fetch):
    result = fetch("/gbk-no-charset")
    assert result.outcome is FetchOutcome.FETCHED
    page = decode_html(result.body, result.content_type)
    assert page.text == GBK_TEXT and page.encoding == "gb18030" and page.encoding_source == "detected"


def test_garbage_bytes_are_fetched_and_decode_without_error(fetch):
    result = fetch("/garbage")
    assert result.outcome is FetchOutcome.FETCHED
    assert decode_html(result.body, result.content_type).replaced_chars > 0


# --- conditional GET -------------------------------------------------------------------
@pytest.mark.parametrize("validator", ["etag", "last_modified"])
def test_conditional_get_returns_not_modified(fetch, server, validator):
    first = fetch("/conditional")
    assert first.outcome is FetchOutcome.FETCHED and first.etag and first.last_modified
    second = fetch("/conditional", **{validator: getattr(first, validator)})
    assert second.outcome is FetchOutcome.NOT_MODIFIED and second.status == 304
    assert second.body is None and second.etag == first.etag and "304" in second.reason


# --- politeness: per-host rate limit ---------------------------------------------------
class RecordingLimiter(HostRateLimiter):
    """Counts every request that asked for a slot (pages, retries and robots.txt alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.hosts: list[str] = []

    def wait(self, host: str, per_second: float) -> float:
        self.hosts.append(host)
        return super().wait(host, per_second)


def span(server: FaultServer, *paths: str) -> float:
    moments = sorted(moment for path in paths for moment in server.arrivals(path))
    return moments[-1] - moments[0]


def test_limiter_hands_out_slots_one_interval_apart():
    now, slept = [100.0], []
    limiter = HostRateLimiter(clock=lambda: now[0], sleep=slept.append)
    delays = [limiter.wait("Example.GOV.cn", 4.0) for _ in range(4)]
    assert delays == [0.0, 0.25, 0.5, 0.75] and slept == [0.25, 0.5, 0.75]
    assert limiter.wait("other.gov.cn", 4.0) == 0.0  # per host
    now[0] += 10  # an idle host starts again without waiting
    assert limiter.wait("example.gov.cn", 4.0) == 0.0
    assert limiter.wait("example.gov.cn", 0) == 0.0  # 0 turns pacing off


def test_limiter_reservations_are_unique_across_threads():
    limiter = HostRateLimiter(clock=lambda: 0.0, sleep=lambda seconds: None)
    with ThreadPoolExecutor(max_workers=8) as pool:
        delays = list(pool.map(lambda _: limiter.wait("h", 10.0), range(40)))
    assert sorted(round(delay, 6) for delay in delays) == [round(n / 10, 6) for n in range(40)]


def test_rate_limit_spaces_requests_to_a_host(server):
    rate, n = 10.0, 5
    limiter = RecordingLimiter()
    with Fetcher(make_source(server, rate=rate), rate_limiter=limiter, **FAST) as fetcher:
        started = time.monotonic()
        results = [fetcher.fetch(server.url("/page")) for _ in range(n)]
        elapsed = time.monotonic() - started
    assert all(r.ok for r in results)
    assert len(limiter.hosts) == server.hits("/robots.txt") + server.hits("/page") == n + 1
    assert elapsed >= n / rate - 0.01  # n pages + robots.txt = n + 1 requests: (n+1-1)/r seconds
    assert span(server, "/robots.txt", "/page") >= 0.9 * n / rate  # seen from the server too


def test_rate_limit_is_shared_by_fetchers_and_threads(server):
    rate, limiter = 20.0, RecordingLimiter()
    fetchers = [Fetcher(make_source(server, rate=rate), rate_limiter=limiter, **FAST) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: fetchers[n % 2].fetch(server.url("/page")), range(8)))
    for fetcher in fetchers:
        fetcher.close()
    assert all(r.ok for r in results)
    assert len(limiter.hosts) == server.hits("/robots.txt") + server.hits("/page") == 10  # + robots per Fetcher
    assert span(server, "/robots.txt", "/page") >= 0.9 * 9 / rate


def test_retries_are_paced_too(server):
    limiter = RecordingLimiter()
    with Fetcher(make_source(server, rate=5.0), rate_limiter=limiter, **FAST) as fetcher:
        assert fetcher.fetch(server.url("/error-then-ok")).ok
    assert len(limiter.hosts) == 3  # robots.txt, first attempt, retry
    assert span(server, "/error-then-ok") >= 0.9 / 5.0


def test_rate_zero_disables_pacing(fetch):
    started = time.monotonic()
    for _ in range(5):
        fetch("/page")
    assert time.monotonic() - started < 0.5


def test_unparsable_redirect_target_is_blocked(fetch, server):
    server.routes["/redirect-garbled"] = lambda req, hit: req.send(302, b"", headers={"Location": "http://[::1/x"})
    result = fetch("/redirect-garbled")
    assert result.outcome is FetchOutcome.REDIRECT_BLOCKED and "unparsable" in result.reason


# --- redirect stubs, 304s nobody asked for, bodies cut short (issue 17.3) ----------------
@pytest.mark.parametrize("path", ["/stub-meta", "/stub-meta-late", "/stub-href", "/stub-assign", "/stub-replace"])
def test_a_redirect_stub_is_followed_to_the_page_it_names(fetch, server, path):
    result = fetch(path)
    assert result.outcome is FetchOutcome.FETCHED and result.body == PAGE_HTML
    assert result.url == server.url(path) and result.final_url == server.url("/page")  # the article's URL is kept
    assert server.hits("/page") == 1 and result.attempts == 2


def test_stubs_and_http_redirects_share_one_hop_count(server):
    with Fetcher(make_source(server), rate_limiter=HostRateLimiter(), **FAST | {"max_redirects": 1}) as fetcher:
        result = fetcher.fetch(server.url("/stub-to-stub"))
    assert result.outcome is FetchOutcome.REDIRECT_LOOP and "more than 1 redirects" in result.reason
    assert server.hits("/page") == 0


def test_a_stub_leading_off_the_allowed_hosts_is_blocked_and_never_requested(fetch, server):
    result = fetch("/stub-offsite")
    assert result.outcome is FetchOutcome.REDIRECT_BLOCKED and result.body is None
    assert "meta refresh" in result.reason and "allowed_hosts" in result.reason and server.hits("/page") == 0


def test_a_stub_leading_to_itself_is_a_loop(fetch, server):
    result = fetch("/stub-loop")
    assert result.outcome is FetchOutcome.REDIRECT_LOOP and "loop" in result.reason
    assert server.hits("/stub-loop") == 1


@pytest.mark.parametrize("path", ["/refresh-without-url", "/report-with-location-script"])
def test_pages_that_only_look_like_stubs_are_pages(fetch, server, path):
    result = fetch(path)
    assert result.outcome is FetchOutcome.FETCHED and result.final_url == server.url(path)
    assert server.hits("/page") == 0 and server.hits("/") == 0


def test_a_304_to_a_request_without_validators_is_a_failure_with_its_reason(fetch, server):
    result = fetch("/not-modified-unasked")
    assert result.outcome is FetchOutcome.HTTP_ERROR and result.status == 304 and result.body is None
    assert "304" in result.reason and "no validators" in result.reason


def test_a_304_to_a_conditional_request_is_still_not_modified(fetch):
    assert fetch("/not-modified-unasked", etag='"report-v1"').outcome is FetchOutcome.NOT_MODIFIED


def test_a_page_longer_than_its_content_length_is_a_truncated_download(fetch):
    result = fetch("/longer-than-declared")
    assert result.outcome is FetchOutcome.NETWORK_ERROR and result.body is None and result.sha256 is None
    assert "truncated" in result.reason and "120" in result.reason and "</html>" in result.reason


def test_caps_that_bit_become_warnings_naming_the_pages(fetch, server):
    from tasks.crawl.fetch import caps_that_bit

    results = [fetch("/oversized"), fetch("/redirect-chain?n=6"), fetch("/redirect-loop"), fetch("/page")]
    warnings = caps_that_bit(results)
    assert len(warnings) == 2
    assert warnings[0].startswith("size cap: 1 page(s)") and server.url("/oversized") in warnings[0]
    assert warnings[1].startswith("redirect cap: 1 page(s)") and server.url("/redirect-chain?n=6") in warnings[1]
    assert server.url("/redirect-loop") not in warnings[1]  # a loop is no cap: raising it would not help
    assert caps_that_bit([fetch("/page")]) == []


def test_a_fetch_after_a_stop_request_raises_and_is_never_sent(fetch, server):
    from tasks.crawl.runlock import RunInterrupted, clear_stop, request_stop

    request_stop()
    try:
        with pytest.raises(RunInterrupted):
            fetch("/page")
    finally:
        clear_stop()
    assert server.hits("/page") == 0
    assert fetch("/page").outcome is FetchOutcome.FETCHED
