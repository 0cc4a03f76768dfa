"""Polite, robust downloading of one source's pages; every call ends in a FetchResult.

Each downloading concern is one small piece (Scrapy keeps each in a middleware):

- retries: urllib3's `Retry` mounted on the session's adapter (`_PoliteRetry`), with
  exponential backoff plus jitter, Retry-After honoured up to settings.RETRY_AFTER_MAX;
  what was retried is read back from `Retry.history`;
- pacing: `tasks.crawl.ratelimit`, before the first attempt and before every retry, and
  held from every response or failure (so the server sees the interval, whatever the
  client's delays);
- robots.txt: `tasks.crawl.robots`, checked for the URL and for every redirect target; a
  scheduler may load it ahead, as a request of its own (`robots_pending`, `load_robots`);
- redirects: followed here one hop at a time, so each target's host is checked before
  it is requested; a redirect stub (a short page whose only job is a meta refresh or a
  `location` assignment in a script: `soft_redirect`) counts as one more hop, with the same
  checks, and the fetch's final URL is the page it leads to;
- what a 200 or a 304 does not prove: a 304 to a request that carried no validators is a
  failure (there is nothing to be "not modified" from), and an HTML body that stops
  mid-document (`cut_off`: no `</html>` and not ending in a tag, as when the server's
  Content-Length was shorter than the page) is a truncated download, never a page;
- limits: connect/read timeouts per attempt; settings.DOWNLOAD_DEADLINE for the whole
  fetch, counted from its first request (time spent queueing for the rate limit before
  it is not the server's fault) and checked between hops, before each retry and after
  every chunk of the body; a cap on decoded body bytes, checked while streaming. The caps
  that bit in a run (size, redirects) are warnings of the run summary (`caps_that_bit`);
- stopping: a fetch that ends after the run was asked to stop (SIGINT, SIGTERM) raises
  RunInterrupted instead of returning, so nothing it saw while the process was going down is
  recorded as the page's outcome;
- connections: a Fetcher alone pools its own; the Fetchers of a crawl share one bounded set
  (`ConnectionPools`: keep-alive for the most recently used hosts only), so a thousand
  sources do not hold a thousand idle connections.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import urldefrag, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3 import PoolManager
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    InvalidHeader,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import RequestHistory, Retry

from tasks import settings
from tasks.crawl.encoding import decode_html
from tasks.crawl.ratelimit import SHARED_LIMITER, HostRateLimiter
from tasks.crawl.runlock import raise_if_stopping
from tasks.records import FetchOutcome, FetchResult, Source
from tasks.crawl.robots import RobotsCache, describe_refusal

log = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 1024  # most bytes read, and decompressed, in one step
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Leading bytes of formats that are never HTML, whatever the Content-Type claims.
_BINARY_SIGNATURES = (
    (b"%PDF-", "PDF document"),
    (b"PK\x03\x04", "ZIP archive or Office document"),
    (b"\xd0\xcf\x11\xe0", "legacy Office document"),
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
)
# A redirect stub is small and says next to nothing; a real page is neither.
SOFT_REDIRECT_MAX_BYTES = 8 * 1024
_STUB_MAX_TEXT_CHARS = 200  # visible characters (script, style, tags left out)
_META_TAG = re.compile(r"<meta\b[^>]*>", re.I)
_ATTRIBUTE = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")
_REFRESH = re.compile(r"^\s*\d*(?:\.\d*)?\s*[;,]?\s*(?:url\s*=\s*)?(?P<url>.*)$", re.I | re.S)
_SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script\s*>", re.I | re.S)
_ONLOAD = re.compile(r"""\bonload\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
_LOCATION = re.compile(
    r"""\blocation(?:\s*\.\s*href)?\s*=\s*(?P<q1>["'])(?P<assigned>.*?)(?P=q1)"""
    r"""|\blocation\s*\.\s*(?:replace|assign)\s*\(\s*(?P<q2>["'])(?P<called>.*?)(?P=q2)\s*\)""", re.S)  # fmt: skip
_NON_TEXT = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.I | re.S)
_REDIRECT_CAP = "more than {limit} redirects"  # how a fetch stopped by MAX_REDIRECTS begins its reason


@dataclass(frozen=True)
class FetchOptions:
    """Knobs of one Fetcher; defaults come from tasks.settings, which states the units."""

    user_agent: str = settings.USER_AGENT
    connect_timeout: float = settings.CONNECT_TIMEOUT
    read_timeout: float = settings.READ_TIMEOUT
    deadline: float = settings.DOWNLOAD_DEADLINE
    retry_times: int = settings.RETRY_TIMES
    retry_http_codes: tuple[int, ...] = settings.RETRY_HTTP_CODES
    backoff_factor: float = settings.RETRY_BACKOFF_FACTOR
    backoff_max: float = settings.RETRY_BACKOFF_MAX
    backoff_jitter: float = settings.RETRY_BACKOFF_JITTER
    retry_after_max: float = settings.RETRY_AFTER_MAX
    max_bytes: int = settings.MAX_RESPONSE_BYTES
    max_redirects: int = settings.MAX_REDIRECTS
    obey_robots: bool = settings.OBEY_ROBOTS
    robots_unreachable_policy: str = settings.ROBOTS_UNREACHABLE_POLICY
    pool_size: int = settings.FETCH_WORKERS  # pooled connections: one per worker thread


class _Abandoned(Exception):
    """The fetch ends here with `outcome`; `reason` says why in plain words."""

    def __init__(self, outcome: FetchOutcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


class _RetriesExhausted(MaxRetryError):
    """urllib3 stopped retrying; keeps the history and final status for the fetch log."""

    def __init__(self, pool: ConnectionPool | None, url: str | None, reason: Exception | None, *,
                 history: tuple[RequestHistory, ...], status: int | None, why: str) -> None:  # fmt: skip
        super().__init__(pool, url or "", reason)  # type: ignore[arg-type]  # urllib3's own Retry passes None
        self.history = history
        self.status = status
        self.why = why


@dataclass(frozen=True)
class _SendBudget:
    """What urllib3's retry loop needs from the fetch in progress.

    requests applies one Retry object to every request of an adapter, so per-fetch
    values travel in a ContextVar, which is per thread and so safe with a thread pool.
    """

    deadline: float  # time.monotonic() by which the fetch must be over
    pace: Callable[[], object]  # blocks until the host's rate limit admits another request
    responded: Callable[[], object]  # an attempt ended (a response or an error): the interval starts again


_BUDGET: ContextVar[_SendBudget | None] = ContextVar("fetch_send_budget", default=None)


class _PoliteRetry(Retry):
    """urllib3 Retry that paces each retry, refuses waits longer than `retry_after_limit`
    or past the fetch deadline, and keeps its history when it gives up."""

    def __init__(self, *args: Any, retry_after_limit: float = settings.RETRY_AFTER_MAX, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after_limit = retry_after_limit

    def new(self, **kw: Any) -> Self:
        kw.setdefault("retry_after_limit", self.retry_after_limit)
        return super().new(**kw)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        status = response.status if response is not None else None
        budget = _BUDGET.get()
        if budget is not None:
            budget.responded()
        try:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError as exc:
            why = f"gave up after {len(self.history) + 1} attempts"
            raise _RetriesExhausted(_pool, url, exc.reason, history=self.history, status=status, why=why) from exc
        refusal = self._refuse_wait(retry, response)
        if refusal:
            reason = error or ResponseError(refusal)
            raise _RetriesExhausted(_pool, url, reason, history=self.history, status=status, why=refusal)
        return retry

    def _refuse_wait(self, retry: Retry, response: BaseHTTPResponse | None) -> str | None:
        wait = retry.get_backoff_time()
        asked = _retry_after_of(retry, response) if self.respect_retry_after_header else None
        if asked is not None and asked > self.retry_after_limit:
            return (f"server asked to retry after {asked:.0f} s (Retry-After), longer than the "
                    f"{self.retry_after_limit:.0f} s we wait")  # fmt: skip
        wait = wait if asked is None else asked
        budget = _BUDGET.get()
        if budget is not None and time.monotonic() + wait >= budget.deadline:
            return f"stopped retrying: waiting {wait:.1f} s more would pass the download deadline"
        return None

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        super().sleep(response)
        raise_if_stopping()
        budget = _BUDGET.get()
        if budget is not None:
            budget.pace()


def _retry_after_of(retry: Retry, response: BaseHTTPResponse | None) -> float | None:
    if response is None:
        return None
    try:
        return retry.get_retry_after(response)
    except InvalidHeader:  # urllib3 then falls back to backoff too
        return None


@dataclass
class _Trace:
    """What one fetch has done so far; becomes its FetchResult however it ends."""

    url: str
    deadline_s: float
    deadline: float | None = None  # monotonic; starts with the first request, after pacing
    final_url: str | None = None
    status: int | None = None
    headers: CaseInsensitiveDict = field(default_factory=CaseInsensitiveDict)
    attempts: int = 0
    retry_reasons: Counter[str] = field(default_factory=Counter)
    hops: int = 0  # redirects followed, HTTP and soft alike
    seen: set[str] = field(default_factory=set)  # URLs requested, for loop detection

    def start_clock(self) -> float:
        """Start the deadline on first use; return it (monotonic)."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.deadline_s
        return self.deadline

    def count_attempts(self, history: Iterable[RequestHistory]) -> None:
        history = tuple(history)
        self.attempts += len(history) + 1
        self.retry_reasons.update(_retry_reason(entry) for entry in history)

    def note_response(self, url: str, response: requests.Response) -> None:
        self.final_url = url
        self.status = response.status_code
        self.headers = CaseInsensitiveDict(response.headers)

    def result(self, outcome: FetchOutcome, reason: str | None = None, body: bytes | None = None) -> FetchResult:
        return FetchResult(
            url=self.url, outcome=outcome, final_url=self.final_url, status=self.status,
            reason=reason, headers=dict(self.headers), body=body,
            content_type=self.headers.get("Content-Type"), attempts=self.attempts,
            retry_reasons=dict(self.retry_reasons), etag=self.headers.get("ETag"),
            last_modified=self.headers.get("Last-Modified"),
            sha256=hashlib.sha256(body).hexdigest() if body is not None else None,
        )  # fmt: skip


class Fetcher:
    """Downloads one source's URLs politely; `fetch()` returns a FetchResult for every
    network or HTTP problem and raises only for caller mistakes (URL outside the source).

    One requests.Session per Fetcher; safe to call from a thread pool. Its connections are
    its own, or the crawl's `pools`; its robots.txt rules its own, or a `robots` cache shared
    by the crawl's Fetchers. Use as a context manager, or call `close()`.
    """

    def __init__(self, source: Source, *, rate_limiter: HostRateLimiter = SHARED_LIMITER,
                 pools: ConnectionPools | None = None, robots: RobotsCache | None = None,
                 **overrides: Any) -> None:  # fmt: skip
        self.source = source
        self.options = FetchOptions(**overrides)
        self._allowed_hosts = frozenset(host.lower() for host in source.allowed_hosts)
        if not self._allowed_hosts:
            raise ValueError(f"source {source.name!r} has no allowed_hosts")
        self.rate = _rate_of(source)  # requests per second per host; 0: not paced
        self._limiter = rate_limiter
        self.session = _build_session(self.options, pools)
        self._robots = robots if robots is not None else RobotsCache(self.options.robots_unreachable_policy)
        if self._robots.unreachable_policy != self.options.robots_unreachable_policy:
            raise ValueError(f"a robots cache deciding {self._robots.unreachable_policy!r} for unreachable files "
                             f"cannot serve a Fetcher told {self.options.robots_unreachable_policy!r}")  # fmt: skip
        self._stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """Download `url` (conditionally when `etag`/`last_modified` are given), following
        HTTP redirects and redirect stubs within allowed_hosts.

        Raises RunInterrupted when the run was asked to stop before or while it ran."""
        if not self._in_scope(url):
            hosts = sorted(self._allowed_hosts)
            raise ValueError(f"{url} is not an http(s) URL on {hosts} (allowed_hosts of source {self.source.name})")
        raise_if_stopping()
        started, fetched_at = time.monotonic(), datetime.now(UTC)
        headers = _conditional_headers(etag, last_modified)
        result = _classify_content(self._run(url, headers, self.options.obey_robots, follow_stubs=True))
        raise_if_stopping()  # what a stopping process saw is not the page's outcome
        result.fetched_at = fetched_at
        result.elapsed_s = round(time.monotonic() - started, 3)
        self._count(result)
        _log_result(result)
        return result

    def robots_pending(self, url: str) -> bool:
        """Would fetching `url` begin with a request for its host's robots.txt?"""
        return self.options.obey_robots and not self._robots.known(url)

    def load_robots(self, url: str) -> None:
        """Read the robots.txt governing `url` now, as a request of its own (a scheduler then
        gives the page its own slot of the host's rate, instead of a wait inside the fetch).
        Raises RunInterrupted when the run was asked to stop."""
        raise_if_stopping()
        self._robots.allows(url, self._download, self.options.user_agent)

    def stats(self) -> dict[str, int]:
        """Counters for the run summary: outcome/<o>, retry/reason_count/<r>, robots/<event>
        (the robots counts are the cache's: the crawl's, when it is shared)."""
        with self._stats_lock:
            return dict(self._stats + self._robots.stats())

    def _download(self, url: str) -> FetchResult:
        """Fetch without robots check or content classification (used for robots.txt)."""
        return self._run(url, {}, obey_robots=False)

    def _run(self, url: str, headers: dict[str, str], obey_robots: bool, follow_stubs: bool = False) -> FetchResult:
        trace = _Trace(url, deadline_s=self.options.deadline, seen={url})
        try:
            target = url
            while True:
                response = self._follow_redirects(trace, target, headers, obey_robots)
                with response:
                    result = self._read(trace, response, conditional=bool(headers))
                stub = soft_redirect(result.body, result.content_type, target) if follow_stubs and result.body else None
                if stub is None:
                    return result
                target = self._next_hop(trace, target, stub.location, how=stub.how)
        except _Abandoned as stop:
            return trace.result(stop.outcome, stop.reason)

    def _follow_redirects(self, trace: _Trace, url: str, headers: dict[str, str],
                          obey_robots: bool) -> requests.Response:  # fmt: skip
        while True:
            if obey_robots and not self._robots.allows(url, self._download, self.options.user_agent):
                raise _Abandoned(FetchOutcome.SKIPPED_ROBOTS, describe_refusal(url))
            response = self._send(trace, url, headers)
            if response.status_code not in _REDIRECT_CODES or "Location" not in response.headers:
                return response
            response.close()  # a redirect's body is never needed
            url = self._next_hop(trace, url, self.session.get_redirect_target(response) or "", how="redirect")

    def _next_hop(self, trace: _Trace, url: str, location: str, how: str) -> str:
        """The URL a redirect (`how`: "redirect", or the kind of stub) from `url` to
        `location` leads to, if it may be followed: within allowed_hosts, not seen before in
        this fetch, within MAX_REDIRECTS hops."""
        try:
            target = urldefrag(urljoin(url, location))[0]
            in_scope = self._in_scope(target)
        except ValueError:  # e.g. a malformed IPv6 literal
            raise _Abandoned(FetchOutcome.REDIRECT_BLOCKED, f"{how} from {url} to unparsable {location!r}") from None
        if target in trace.seen:
            raise _Abandoned(FetchOutcome.REDIRECT_LOOP, f"redirect loop: {url} ({how}) leads back to {target}")
        if not in_scope:
            raise _Abandoned(
                FetchOutcome.REDIRECT_BLOCKED,
                f"{how} from {url} to {target} not followed: host {urlsplit(target).hostname!r} "
                f"is not in allowed_hosts {sorted(self._allowed_hosts)}",
            )
        if trace.hops >= self.options.max_redirects:
            cap = _REDIRECT_CAP.format(limit=self.options.max_redirects)
            raise _Abandoned(FetchOutcome.REDIRECT_LOOP, f"{cap}; stopped before {target} (MAX_REDIRECTS)")
        trace.hops += 1
        trace.seen.add(target)
        return target

    def _send(self, trace: _Trace, url: str, headers: dict[str, str]) -> requests.Response:
        host = urlsplit(url).hostname or ""
        pace = partial(self._limiter.wait, host, self.rate)
        responded = partial(self._limiter.hold, host, self.rate)
        pace()
        deadline = trace.start_clock()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Abandoned(FetchOutcome.TIMEOUT, f"download deadline of {trace.deadline_s:g} s passed before {url}")
        timeout = (min(self.options.connect_timeout, remaining), min(self.options.read_timeout, remaining))
        token = _BUDGET.set(_SendBudget(deadline, pace, responded))
        try:
            response = self.session.get(url, headers=headers, allow_redirects=False, stream=True, timeout=timeout)
        except requests.RequestException as exc:
            raise _abandon_on_error(trace, url, exc) from exc
        finally:
            responded()  # the status line is in (or the attempt failed): the host's interval starts now
            _BUDGET.reset(token)
        trace.count_attempts(response.raw.retries.history if response.raw.retries else ())
        trace.note_response(url, response)
        return response

    def _read(self, trace: _Trace, response: requests.Response, conditional: bool) -> FetchResult:
        status = response.status_code
        if status == 304 and not conditional:
            raise _Abandoned(FetchOutcome.HTTP_ERROR,
                             f"HTTP 304 Not Modified from {trace.final_url} to a request that carried no validators "
                             "(If-None-Match, If-Modified-Since): no copy to keep, nothing to load")  # fmt: skip
        if status == 304:
            return trace.result(FetchOutcome.NOT_MODIFIED, "not modified since the last fetch (HTTP 304)")
        if status != 200:
            raise _Abandoned(FetchOutcome.HTTP_ERROR, f"{_describe_status(status)} from {trace.final_url}")
        self._check_declared_length(response)
        return trace.result(FetchOutcome.FETCHED, body=self._read_body(response, trace))

    def _check_declared_length(self, response: requests.Response) -> None:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.options.max_bytes:
            raise _Abandoned(
                FetchOutcome.TOO_LARGE,
                f"Content-Length {declared} bytes is over the {self.options.max_bytes}-byte limit; not downloaded",
            )

    def _read_body(self, response: requests.Response, trace: _Trace) -> bytes:
        # read1 returns as soon as any bytes arrive, so a dripping server is caught at the
        # deadline; decode_content with a bounded amount stops a gzip bomb at the cap.
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := response.raw.read1(_CHUNK_BYTES, decode_content=True):
                size += len(chunk)
                self._check_progress(size, trace)
                chunks.append(chunk)
        except HTTPError as exc:
            raise _abandon_mid_body(exc, size, response, self.options.read_timeout) from exc
        return b"".join(chunks)

    def _check_progress(self, size: int, trace: _Trace) -> None:
        if size > self.options.max_bytes:
            raise _Abandoned(
                FetchOutcome.TOO_LARGE,
                f"body passed the {self.options.max_bytes}-byte limit after decompression; download stopped",
            )
        if trace.deadline is not None and time.monotonic() > trace.deadline:
            raise _Abandoned(
                FetchOutcome.TIMEOUT,
                f"download deadline of {trace.deadline_s:g} s passed after {size} bytes of the body; body dropped",
            )

    def _in_scope(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and (parts.hostname or "") in self._allowed_hosts

    def _count(self, result: FetchResult) -> None:
        with self._stats_lock:
            self._stats[f"outcome/{result.outcome}"] += 1
            for reason, count in result.retry_reasons.items():
                self._stats[f"retry/reason_count/{reason}"] += count


class _HopByHopSession(requests.Session):
    """A Session that never resolves redirects itself: Fetcher follows them hop by hop.

    Even with allow_redirects=False, requests prepares the next request from Location
    (Response.next), which raises on a malformed Location before we can judge it.

    Environment settings are read once per origin: requests reads every proxy variable
    of the environment on every request, a third of its own cost per request (measured on
    loopback), for an answer that does not change during a run.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple, dict[str, Any]] = {}

    def resolve_redirects(self, *args: Any, **kwargs: Any) -> Generator[requests.Response, None, None]:
        yield from ()

    def merge_environment_settings(self, url: str, proxies: dict[str, str] | None, stream: bool | None,
                                   verify: Any, cert: Any) -> dict[str, Any]:  # fmt: skip
        key = (*urlsplit(url)[:2], tuple(sorted((proxies or {}).items())), stream, repr(verify), repr(cert))
        merged = self._environment.get(key)
        if merged is None:
            merged = self._environment[key] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        return {**merged, "proxies": dict(merged["proxies"])}


class ConnectionPools:
    """The connections of every Fetcher of a crawl, bounded whatever the number of hosts.

    One urllib3 PoolManager keeps a pool per host for the `keep_alive_hosts` most recently
    used hosts (the least recently used pool is closed when another is needed), each pool
    keeping at most `per_host` idle connections. With one request in flight per rate-limited
    host, open connections stay under `keep_alive_hosts` + the requests in flight.
    """

    def __init__(self, keep_alive_hosts: int = settings.CRAWL_KEEP_ALIVE_HOSTS,
                 per_host: int = settings.CRAWL_CONNECTIONS_PER_HOST) -> None:  # fmt: skip
        self.manager = PoolManager(num_pools=max(1, keep_alive_hosts), maxsize=max(1, per_host), block=False)

    def __enter__(self) -> ConnectionPools:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.manager.clear()


class _SharedPoolsAdapter(HTTPAdapter):
    """An HTTPAdapter on a crawl's ConnectionPools; closing it leaves them to their owner."""

    def __init__(self, pools: ConnectionPools, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.poolmanager = pools.manager

    def close(self) -> None:
        for proxy in self.proxy_manager.values():
            proxy.clear()


def _build_session(options: FetchOptions, pools: ConnectionPools | None = None) -> requests.Session:
    retry = _PoliteRetry(
        total=options.retry_times,
        status_forcelist=options.retry_http_codes,
        allowed_methods=frozenset({"GET", "HEAD"}),
        backoff_factor=options.backoff_factor,
        backoff_max=options.backoff_max,
        backoff_jitter=options.backoff_jitter,
        respect_retry_after_header=True,
        raise_on_status=True,  # give-ups arrive as _RetriesExhausted, with history and reason
        retry_after_limit=options.retry_after_max,
    )
    adapter = (HTTPAdapter(max_retries=retry, pool_connections=options.pool_size, pool_maxsize=options.pool_size)
               if pools is None else _SharedPoolsAdapter(pools, max_retries=retry))  # fmt: skip
    session = _HopByHopSession()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({
        "User-Agent": options.user_agent,
        "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
        "Accept-Language": "zh-CN,zh;q=0.9",
        "Accept-Encoding": "gzip, deflate",  # decoders urllib3 can bound while streaming
    })  # fmt: skip
    return session


def _rate_of(source: Source) -> float:
    rate = source.rate_limit_per_second
    return settings.DEFAULT_RATE_LIMIT_PER_SECOND if rate is None else rate


def _conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _abandon_on_error(trace: _Trace, url: str, exc: requests.RequestException) -> _Abandoned:
    """Turn a failed request (after urllib3's retries) into the fetch's ending."""
    cause = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
    gave_up = cause if isinstance(cause, _RetriesExhausted) else None
    trace.count_attempts(gave_up.history if gave_up else ())
    trace.final_url = url
    if gave_up is not None and gave_up.status is not None:
        trace.status = gave_up.status
        return _Abandoned(FetchOutcome.HTTP_ERROR, f"{_describe_status(gave_up.status)} from {url}; {gave_up.why}")
    root = (cause.reason or cause) if isinstance(cause, MaxRetryError) else cause
    outcome = FetchOutcome.TIMEOUT if _is_timeout(root) else FetchOutcome.NETWORK_ERROR
    why = f"; {gave_up.why}" if gave_up else ""
    return _Abandoned(outcome, f"{_describe_error(root)} ({url}){why}")


def _abandon_mid_body(exc: HTTPError, size: int, response: requests.Response, read_timeout: float) -> _Abandoned:
    if isinstance(exc, ReadTimeoutError):
        return _Abandoned(FetchOutcome.TIMEOUT, f"no data for {read_timeout:g} s after {size} bytes of the body")
    if isinstance(exc, DecodeError):
        encoding = response.headers.get("Content-Encoding")
        return _Abandoned(FetchOutcome.NETWORK_ERROR, f"body could not be decompressed ({encoding}): {exc}")
    expected = response.headers.get("Content-Length", "an unknown number of")
    return _Abandoned(
        FetchOutcome.NETWORK_ERROR,
        f"body truncated: connection ended after {size} of {expected} bytes ({_innermost(exc)}); partial body dropped",
    )


def _is_timeout(error: BaseException) -> bool:
    if isinstance(error, NewConnectionError):  # urllib3 files refusals under connect timeouts
        return False
    return isinstance(error, (ConnectTimeoutError, ReadTimeoutError, requests.Timeout))


def _retry_reason(entry: RequestHistory) -> str:
    """Key for FetchResult.retry_reasons: the status code, or the kind of network error."""
    if entry.status is not None:
        return str(entry.status)
    if entry.error is not None and _is_timeout(entry.error):
        return "ReadTimeout" if isinstance(entry.error, ReadTimeoutError) else "ConnectTimeout"
    return "ConnectionError"


def _describe_error(error: BaseException) -> str:
    if isinstance(error, NameResolutionError):
        summary = "DNS lookup failed"
    elif isinstance(error, NewConnectionError):
        summary = "could not connect"
    elif isinstance(error, ConnectTimeoutError):
        summary = "connect timed out"
    elif isinstance(error, ReadTimeoutError):
        summary = "no response within the read timeout"
    elif isinstance(error, ProtocolError):
        summary = "connection dropped before a response"
    else:
        summary = "request failed"
    return f"{summary}: {_innermost(error)}"


def _innermost(error: BaseException) -> str:
    """The most specific error inside urllib3's wrappers, as 'Type: message'."""
    for _depth in range(8):  # bounded: exception args could in theory nest forever
        inner = next((arg for arg in getattr(error, "args", ()) if isinstance(arg, BaseException)), None)
        if inner is None:
            break
        error = inner
    return f"{type(error).__name__}: {error}"[:300]


def _describe_status(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _classify_content(result: FetchResult) -> FetchResult:
    """Keep FETCHED for HTML only: other bodies become NON_HTML (kept, never parsed)."""
    if result.outcome is not FetchOutcome.FETCHED:
        return result
    if not result.body:
        empty = "HTTP 200 with an empty body"
        return replace(result, outcome=FetchOutcome.HTTP_ERROR, reason=empty, body=None, sha256=None)
    media_type = (result.content_type or "").split(";")[0].strip().lower()
    sniffed = next((kind for magic, kind in _BINARY_SIGNATURES if result.body.startswith(magic)), None)
    if sniffed:
        served_as = media_type or "no Content-Type"
        return replace(result, outcome=FetchOutcome.NON_HTML, reason=f"body is a {sniffed} (served as {served_as})")
    if media_type and media_type not in _HTML_TYPES:
        return replace(result, outcome=FetchOutcome.NON_HTML, reason=f"Content-Type {media_type} is not HTML")
    if cut_off(result.body):
        declared = result.headers.get("Content-Length") or result.headers.get("content-length")
        length = f" (its Content-Length said {declared})" if declared else ""
        return replace(result, outcome=FetchOutcome.NETWORK_ERROR, body=None, sha256=None,
                       reason=f"body truncated: the HTML stops mid-document after {len(result.body)} bytes{length}, "
                              "without </html>; not loaded, asked again next run")  # fmt: skip
    return result


def cut_off(body: bytes) -> bool:
    """Does this HTML document stop mid-way? It starts as markup, has no `</html>` near its
    end, and its last character is not the `>` of a tag. (A complete page without
    `</html>` still ends with a tag; a cut one ends wherever the bytes ran out.)"""
    text = body.removeprefix(b"\xef\xbb\xbf").strip()
    if not text.startswith(b"<"):
        return False  # not markup at all: the extractor will say what it is
    return b"</html" not in text[-2048:].lower() and not text.endswith(b">")


@dataclass(frozen=True)
class SoftRedirect:
    """Where a redirect stub sends a browser, and how it says so."""

    location: str  # as written on the page (resolved against the page's URL by the fetcher)
    how: str  # "meta refresh" | "script location"


def soft_redirect(body: bytes | None, content_type: str | None, url: str) -> SoftRedirect | None:
    """The redirect a stub page makes: a `<meta http-equiv="refresh" content="0;url=…">`, or a
    `location.href = '…'` / `window.location = '…'` / `location.replace('…')` in one of its
    scripts (or its body's onload). Only pages of at most SOFT_REDIRECT_MAX_BYTES whose
    visible text is a line or two count as stubs: a report that happens to contain such a
    script is a report. None when the page is not a stub."""
    if not body or len(body) > SOFT_REDIRECT_MAX_BYTES:
        return None
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type and media_type not in _HTML_TYPES:
        return None
    text = decode_html(body, content_type).text
    visible = html.unescape(_NON_TEXT.sub(" ", text))
    if sum(1 for char in visible if not char.isspace()) > _STUB_MAX_TEXT_CHARS:
        return None
    found = _meta_refresh(text) or _script_location(text)
    if found is None:
        return None
    location = html.unescape(found[1]).strip().strip("'\"").strip()
    if not location or location.lower().startswith(("javascript:", "mailto:", "#")):
        return None
    return SoftRedirect(location=location, how=found[0])


def _meta_refresh(text: str) -> tuple[str, str] | None:
    for tag in _META_TAG.findall(text):
        attributes = {name.lower(): double or single or bare for name, double, single, bare in _ATTRIBUTE.findall(tag)}
        if attributes.get("http-equiv", "").strip().lower() != "refresh":
            continue
        match = _REFRESH.match(attributes.get("content", ""))
        if match and match["url"].strip():
            return "meta refresh", match["url"]
    return None


def _script_location(text: str) -> tuple[str, str] | None:
    scripts = _SCRIPT.findall(text) + [a or b for a, b in _ONLOAD.findall(text)]
    for script in scripts:
        match = _LOCATION.search(script)
        if match:
            return "script location", match["assigned"] if match["assigned"] is not None else match["called"]
    return None


def caps_that_bit(results: Iterable[FetchResult]) -> list[str]:
    """The summary's warnings for the caps that stopped downloads: the size cap
    (MAX_RESPONSE_BYTES) and the redirect cap (MAX_REDIRECTS), with the pages they stopped.
    Each such page is also a failure with its reason; the warning says a limit is why."""
    results = list(results)
    too_large = [r.url for r in results if r.outcome is FetchOutcome.TOO_LARGE]
    prefix = _REDIRECT_CAP.split("{", 1)[0]
    redirected = [r.url for r in results
                  if r.outcome is FetchOutcome.REDIRECT_LOOP and (r.reason or "").startswith(prefix)]  # fmt: skip
    warnings = []
    if too_large:
        warnings.append(f"size cap: {len(too_large)} page(s) larger than MAX_RESPONSE_BYTES not kept "
                        f"(GOVETL_MAX_RESPONSE_BYTES raises it): {', '.join(too_large)}")  # fmt: skip
    if redirected:
        warnings.append(f"redirect cap: {len(redirected)} page(s) needing more redirects than MAX_REDIRECTS not "
                        f"fetched (GOVETL_MAX_REDIRECTS raises it): {', '.join(redirected)}")  # fmt: skip
    return warnings


def _log_result(result: FetchResult) -> None:
    quiet = (FetchOutcome.FETCHED, FetchOutcome.NOT_MODIFIED, FetchOutcome.NON_HTML, FetchOutcome.SKIPPED_ROBOTS)
    level = logging.INFO if result.outcome in quiet else logging.WARNING
    log.log(level, "%s %s in %.2f s, %d attempt(s): %s", result.outcome, result.url, result.elapsed_s,
            result.attempts, result.reason or f"HTTP {result.status}")  # fmt: skip
