"""Per-host pacing: a minimum interval between the starts of two requests to one host.

One `HostRateLimiter` (`SHARED_LIMITER`) serves every Fetcher of the process, so two
sources on the same host, a thread pool, retries and robots.txt requests all share the
host's budget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class HostRateLimiter:
    """Hands out request start times per host, at least `1 / per_second` seconds apart."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_start: dict[str, float] = {}  # host -> earliest monotonic time for the next start

    def wait(self, host: str, per_second: float) -> float:
        """Block until `host` may receive a request; return the seconds slept. 0 disables pacing."""
        if per_second <= 0:
            return 0.0
        delay = self._reserve(host.lower(), 1.0 / per_second)
        if delay > 0:
            self._sleep(delay)
        return delay

    def _reserve(self, host: str, interval: float) -> float:
        # Reserve a slot under the lock, sleep outside it: waiting threads queue up in
        # reservation order and never hold the lock while sleeping.
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start.get(host, now))
            self._next_start[host] = start + interval
        return start - now


SHARED_LIMITER = HostRateLimiter()
