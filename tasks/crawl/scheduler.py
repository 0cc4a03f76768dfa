"""Many hosts over a bounded pool of threads, each host at its own pace.

A crawl of a province has a thousand hosts, each allowed a request a second. A thread per
host would be a thousand threads; a fixed pool whose threads sleep in the rate limiter
leaves hosts waiting behind each other's sleeps. Here no thread sleeps for a host's pace:
`HostScheduler` keeps each host's jobs (one request each) in a queue of their own, and
one dispatching thread hands a job to the pool's queue as soon as its host may be asked
(`HostRateLimiter.ready_at`); `workers` threads take them in that order and run them.

- a paced host (its rate above 0) has one job out at a time: the next one waits for the
  previous response and its interval (tasks/crawl/ratelimit.py), so the rate limiter in
  the fetcher finds the host free and does not sleep;
- a host whose rate limit is off (0: loopback benchmarks) has up to `per_host` out at once;
- a job runs in a worker thread and says whether it is done; if not (it only fetched the
  host's robots.txt) it runs again, first of its host, at the host's next slot;
- `urgent` jobs go to the front of their host's queue (a listing page, which leads to
  more work, before the downloads already planned);
- a job that raises stops the scheduler: nothing more is run, and `failure` holds the
  exception for whoever waits on the jobs (a job that must not stop the others catches its
  own errors). That is how a stop request (RunInterrupted) ends a crawl.

A job handed over when all workers are busy waits in the pool's queue: later than its
slot, which politeness allows, never sooner. The dispatcher is woken only when a host
becomes ready before the moment it sleeps until: the cost per job is a heap push and pop
and a hand-over through a C queue (measured: a thread pool executor's future per job and
a wake-up per completion were a third of the crawl's CPU at a thousand hosts).

What still waits inside a thread: retries (their backoff and Retry-After) and redirects
to another page of the same host (its interval), both rare; the pool has `workers`
threads to cover them.
"""

from __future__ import annotations

import heapq
import itertools
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tasks.crawl.ratelimit import SHARED_LIMITER, HostRateLimiter

Job = Callable[[], bool]  # runs one request; True when done, False to run again at the host's next slot


@dataclass
class _Host:
    name: str
    queue: deque[tuple[Job, float]] = field(default_factory=deque)  # (job, the rate it asks the host at)
    out: int = 0  # jobs handed to the pool and not finished
    waiting: bool = False  # in the ready heap


@dataclass
class SchedulerStats:
    """What a run of the scheduler reached: for the benchmark and the tests."""

    jobs: int = 0  # jobs run (a robots.txt then its page: two)
    peak_running: int = 0  # most jobs running at once (never above the workers)
    hosts: int = 0  # hosts that received a job


class HostScheduler:
    """Runs jobs of many hosts on `workers` threads; use as a context manager."""

    def __init__(self, workers: int, per_host: int = 1, limiter: HostRateLimiter = SHARED_LIMITER,
                 clock: Callable[[], float] = time.monotonic, name: str = "crawl") -> None:  # fmt: skip
        if workers < 1:
            raise ValueError(f"a scheduler needs at least one worker, not {workers}")
        self.workers, self.per_host = workers, max(1, per_host)
        self.failure: BaseException | None = None
        self.stats = SchedulerStats()
        self._limiter, self._clock = limiter, clock
        self._hosts: dict[str, _Host] = {}
        self._ready: list[tuple[float, int, str]] = []  # (may start at, tie-break, host): hosts with a job to hand out
        self._order = itertools.count()
        self._wake_at = math.inf  # when the dispatcher means to look at the heap again
        self._running = 0
        self._closed = False
        self._cond = threading.Condition()
        self._handed: queue.SimpleQueue[tuple[_Host, Job, float] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-worker-{n}", daemon=True)
                         for n in range(workers)]  # fmt: skip
        self._threads.append(threading.Thread(target=self._dispatch, name=f"{name}-dispatch", daemon=True))
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> HostScheduler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def submit(self, host: str, rate: float, job: Job, urgent: bool = False) -> None:
        """Queue `job` (one request to `host`, paced at `rate` requests/s; 0: unpaced)."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the scheduler is closed")
            entry = self._hosts.get(host)
            if entry is None:
                entry = self._hosts[host] = _Host(host)
                self.stats.hosts += 1
            if urgent:
                entry.queue.appendleft((job, rate))
            else:
                entry.queue.append((job, rate))
            self._offer(entry)

    def close(self) -> None:
        """Stop handing out jobs and wait for those running (the others are dropped)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        for _ in range(self.workers):
            self._handed.put(None)
        for thread in self._threads:
            thread.join()

    # -- under self._cond
    def _offer(self, host: _Host) -> None:
        """Put `host` in the ready heap if its next job may go out once its slot comes."""
        if host.waiting or not host.queue or host.out >= self._capacity(host):
            return
        start = self._limiter.ready_at(host.name) if host.queue[0][1] > 0 else 0.0
        heapq.heappush(self._ready, (start, next(self._order), host.name))
        host.waiting = True
        if start < self._wake_at:  # sooner than the dispatcher means to look
            self._cond.notify()

    def _capacity(self, host: _Host) -> int:
        return 1 if host.queue and host.queue[0][1] > 0 else self.per_host

    def _dispatch(self) -> None:
        with self._cond:
            while not self._closed:
                if self.failure is None:
                    self._hand_out_ready()
                self._wake_at = self._ready[0][0] if self._ready and self.failure is None else math.inf
                self._cond.wait(None if math.isinf(self._wake_at) else max(0.0, self._wake_at - self._clock()))
            self._wake_at = -math.inf  # nobody to wake any more

    def _hand_out_ready(self) -> None:
        """Hand the pool the next job of every host whose slot has come."""
        now = self._clock()
        while self._ready and self._ready[0][0] <= now:
            _, _, name = heapq.heappop(self._ready)
            host = self._hosts[name]
            host.waiting = False
            if not host.queue or host.out >= self._capacity(host):
                continue
            if host.queue[0][1] > 0 and self._limiter.ready_at(name) > now:  # moved by a fetch beyond the scheduler
                self._offer(host)
                continue
            job, rate = host.queue.popleft()
            host.out += 1
            self._handed.put((host, job, rate))
            self._offer(host)  # an unpaced host may hand out another at once

    # -- in a worker thread
    def _work(self) -> None:
        while (handed := self._handed.get()) is not None:
            host, job, rate = handed
            with self._cond:
                skip = self.failure is not None
                self._running += 1
                self.stats.jobs += not skip
                self.stats.peak_running = max(self.stats.peak_running, self._running)
            again = False
            try:
                again = not skip and not job()
            except BaseException as exc:  # noqa: BLE001 (the waiter re-raises it: see the module docstring)
                with self._cond:
                    if self.failure is None:
                        self.failure = exc
            finally:
                with self._cond:
                    self._running -= 1
                    host.out -= 1
                    if again and self.failure is None:
                        host.queue.appendleft((job, rate))
                    self._offer(host)
