"""robots.txt policy: one parsed file per origin, fetched on first use.

The file is downloaded by the asking Fetcher's own downloader (its session, so it is
rate-limited, retried and size-capped like any page). Interpretation follows RFC 9309
and Scrapy: 200 → parse the rules; other 4xx (401/403 included) → no rules, allow all;
429, 5xx, network errors, timeouts and blocked redirects → "unreachable", decided by
settings.ROBOTS_UNREACHABLE_POLICY ("allow" or "deny"), logged and counted.

One cache may serve every Fetcher of a crawl (several columns of one site then ask for
its robots.txt once): rules are kept per origin and read for the asking user agent, and
two origins load at the same time, each under a lock of its own, so a slow robots.txt
delays only its own host.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from tasks import settings
from tasks.records import FetchResult

log = logging.getLogger(__name__)

_UNREACHABLE_POLICIES = ("allow", "deny")


def robots_url(url: str) -> str:
    """The robots.txt URL governing `url` (same scheme, host and port)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/robots.txt"


class RobotsCache:
    """Answers "may we fetch this URL?" with one RobotFileParser per origin."""

    def __init__(self, unreachable_policy: str = settings.ROBOTS_UNREACHABLE_POLICY) -> None:
        if unreachable_policy not in _UNREACHABLE_POLICIES:
            raise ValueError(f"robots unreachable policy must be one of {_UNREACHABLE_POLICIES}")
        self.unreachable_policy = unreachable_policy
        self._parsers: dict[str, RobotFileParser] = {}
        self._loading: dict[str, threading.Lock] = {}  # per robots.txt URL: one download each
        self._lock = threading.Lock()  # guards the two dicts and the counters, never held while downloading
        self._stats: Counter[str] = Counter()

    def allows(self, url: str, download: Callable[[str], FetchResult], user_agent: str) -> bool:
        """True when robots.txt lets `user_agent` fetch `url` (downloaded with `download` on
        first use); counts refusals."""
        allowed = self._parser_for(robots_url(url), download).can_fetch(user_agent, url)
        if not allowed:
            with self._lock:
                self._stats["robots/forbidden"] += 1
        return allowed

    def known(self, url: str) -> bool:
        """Is the robots.txt governing `url` read already (asking costs no request)?"""
        with self._lock:
            return robots_url(url) in self._parsers

    def stats(self) -> Counter[str]:
        """Counts of robots/fetched, robots/missing, robots/unreachable, robots/forbidden."""
        with self._lock:
            return Counter(self._stats)

    def _parser_for(self, url: str, download: Callable[[str], FetchResult]) -> RobotFileParser:
        with self._lock:
            parser = self._parsers.get(url)
            if parser is not None:
                return parser
            loading = self._loading.setdefault(url, threading.Lock())
        with loading:  # a second asker waits for the first's download instead of repeating it
            with self._lock:
                parser = self._parsers.get(url)
            if parser is None:
                parser = self._load(url, download)
                with self._lock:
                    self._parsers[url] = parser
                    del self._loading[url]
            return parser

    def _load(self, url: str, download: Callable[[str], FetchResult]) -> RobotFileParser:
        result = download(url)
        parser = RobotFileParser(url)
        if result.status == 200 and result.body is not None:
            self._count("robots/fetched")
            parser.parse(result.body.decode("utf-8", errors="replace").splitlines())
        elif result.status is not None and 400 <= result.status < 500 and result.status != 429:
            self._count("robots/missing")
            parser.allow_all = True  # type: ignore[attr-defined]  # typeshed omits allow_all/disallow_all
        else:
            self._apply_unreachable_policy(parser, result)
        return parser

    def _apply_unreachable_policy(self, parser: RobotFileParser, result: FetchResult) -> None:
        self._count("robots/unreachable")
        log.warning(
            "robots.txt %s unreachable (%s: %s); policy %r",
            result.url, result.outcome, result.reason, self.unreachable_policy,
        )  # fmt: skip
        if self.unreachable_policy == "allow":
            parser.allow_all = True  # type: ignore[attr-defined]
        else:
            parser.disallow_all = True  # type: ignore[attr-defined]

    def _count(self, event: str) -> None:
        with self._lock:
            self._stats[event] += 1


def describe_refusal(url: str) -> str:
    """The reason stored for a URL skipped because of robots.txt."""
    return f"robots: {robots_url(url)} disallows this URL for our user agent; not requested"
