"""robots.txt policy: one parsed file per origin, fetched on first use.

The file is downloaded by the caller's own downloader (the Fetcher's session, so it is
rate-limited, retried and size-capped like any page). Interpretation follows RFC 9309
and Scrapy: 200 → parse the rules; other 4xx (401/403 included) → no rules, allow all;
429, 5xx, network errors, timeouts and blocked redirects → "unreachable", decided by
settings.ROBOTS_UNREACHABLE_POLICY ("allow" or "deny"), logged and counted.
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

    def __init__(
        self,
        download: Callable[[str], FetchResult],
        user_agent: str = settings.USER_AGENT,
        unreachable_policy: str = settings.ROBOTS_UNREACHABLE_POLICY,
    ) -> None:
        if unreachable_policy not in _UNREACHABLE_POLICIES:
            raise ValueError(f"robots unreachable policy must be one of {_UNREACHABLE_POLICIES}")
        self._download = download
        self._user_agent = user_agent
        self._unreachable_policy = unreachable_policy
        self._parsers: dict[str, RobotFileParser] = {}
        self._lock = threading.Lock()  # one download per origin even with a thread pool
        self._stats: Counter[str] = Counter()

    def allows(self, url: str) -> bool:
        """True when robots.txt lets our user agent fetch `url`; counts refusals."""
        allowed = self._parser_for(robots_url(url)).can_fetch(self._user_agent, url)
        if not allowed:
            with self._lock:
                self._stats["robots/forbidden"] += 1
        return allowed

    def stats(self) -> Counter[str]:
        """Counts of robots/fetched, robots/missing, robots/unreachable, robots/forbidden."""
        with self._lock:
            return Counter(self._stats)

    def _parser_for(self, url: str) -> RobotFileParser:
        with self._lock:
            if url not in self._parsers:
                self._parsers[url] = self._load(url)
            return self._parsers[url]

    def _load(self, url: str) -> RobotFileParser:
        result = self._download(url)
        parser = RobotFileParser(url)
        if result.status == 200 and result.body is not None:
            self._stats["robots/fetched"] += 1
            parser.parse(result.body.decode("utf-8", errors="replace").splitlines())
        elif result.status is not None and 400 <= result.status < 500 and result.status != 429:
            self._stats["robots/missing"] += 1
            parser.allow_all = True  # type: ignore[attr-defined]  # typeshed omits allow_all/disallow_all
        else:
            self._apply_unreachable_policy(parser, result)
        return parser

    def _apply_unreachable_policy(self, parser: RobotFileParser, result: FetchResult) -> None:
        self._stats["robots/unreachable"] += 1
        log.warning(
            "robots.txt %s unreachable (%s: %s); policy %r",
            result.url, result.outcome, result.reason, self._unreachable_policy,
        )  # fmt: skip
        if self._unreachable_policy == "allow":
            parser.allow_all = True  # type: ignore[attr-defined]
        else:
            parser.disallow_all = True  # type: ignore[attr-defined]


def describe_refusal(url: str) -> str:
    """The reason stored for a URL skipped because of robots.txt."""
    return f"robots: {robots_url(url)} disallows this URL for our user agent; not requested"

