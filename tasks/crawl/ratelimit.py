"""Per-host pacing: at least `1 / per_second` seconds between two requests to one host.

One `HostRateLimiter` (`SHARED_LIMITER`) serves every Fetcher of the process, so two
sources on the same host, a pool of threads, retries and robots.txt requests all share the
host's budget.

The interval is counted twice over, and the later of the two wins: from the start of the
previous request (`wait`, which reserves start times, so threads queue in order), and from
the moment its response (or its failure) arrived (`hold`). Start times alone are what the
client planned: a request that left late (a busy process, a slow connect) would reach the
server less than an interval before the next one. Counted from the response as well, the
server never sees two requests of a host closer together than the interval.
`ready_at` tells a scheduler when a host may be asked again (tasks/crawl/scheduler.py).
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

    def hold(self, host: str, per_second: float) -> None:
        """A response from `host` has begun to arrive, or its request failed: the host's next
        request starts no sooner than one interval from now."""
        if per_second <= 0:
            return
        host = host.lower()
        with self._lock:
            self._next_start[host] = max(self._next_start.get(host, 0.0), self._clock() + 1.0 / per_second)

    def ready_at(self, host: str) -> float:
        """The monotonic time from which `host` may receive its next request without waiting
        (in the past, or 0.0, when it may at once)."""
        with self._lock:
            return self._next_start.get(host.lower(), 0.0)

    def _reserve(self, host: str, interval: float) -> float:
        # Reserve a slot under the lock, sleep outside it: waiting threads queue up in
        # reservation order and never hold the lock while sleeping.
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start.get(host, now))
            self._next_start[host] = start + interval
        return start - now


SHARED_LIMITER = HostRateLimiter()
