"""Many loopback hosts, each serving a column of the bench corpus, with every request logged.

    python -m bench.hosts --hosts 1000 --pages 10 --log requests.json

For the wide-crawl benchmark (bench/wide.py) and its test. Every address of 127.0.0.0/8
reaches the loopback interface on Linux, but a socket bound to one address accepts only
that one: the server binds one listening socket per host address (127.101.x.y, never
0.0.0.0), all on one port, and serves them from one asyncio loop in a process of its own,
so its work is not the crawler's. It serves the bench corpus (bench/corpus.py: `pages`
report pages in each of the sample site's five templates, their listing and robots.txt) on
every address as the sample site's server does (sample_site/server.py: gzip when asked,
ETag and Last-Modified with 304s, an HTML 404), each body compressed once. Host i is a
column of template i mod 5 (`ManyHosts.sources`).

It prints `ready PORT` once listening, serves until its standard input closes, then writes
its log and exits: each request's host, path, status and arrival time (time.monotonic(),
the same clock as any process of the machine, taken when its head was read), the most
connections open at once, and its own CPU seconds. `HostLog` reads what the log says of a
crawl: per-host spacing, robots.txt requests, the slowest host's own minimum time.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gzip
import json
import resource
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import yaml

from bench.corpus import DEFAULT_SEED, build_bench_corpus
from sample_site.model import Resource
from sample_site.render import render_not_found
from sample_site.server import accepts_gzip, http_date, is_not_modified, lookup
from tasks.settings import PROJECT_ROOT, SOURCES_FILE
from tasks.sources import expand_env

FIRST_OCTET_PAIR = (127, 101)  # 127.101.0.1 onwards: away from 127.0.0.1, which everything else uses
_HEAD_LIMIT = 64 * 1024  # bytes of request head accepted
_BIND_ATTEMPTS = 10  # ports tried before giving up (another process may hold one on some address)
_START_TIMEOUT = 60.0  # seconds for the server to build its corpus and listen


def loopback_address(i: int) -> str:
    """The address of host `i` (from 0): 127.101.0.1, 127.101.0.2 … (255 per third octet)."""
    second, rest = divmod(i, 255 * 255)
    third, fourth = divmod(rest, 255)
    return f"{FIRST_OCTET_PAIR[0]}.{FIRST_OCTET_PAIR[1] + second}.{third}.{fourth + 1}"


# --- the server (child process) --------------------------------------------------------------
class _Server:
    """The asyncio side: one listening socket per address, one handler for all."""

    def __init__(self, corpus: dict[str, Resource]) -> None:
        self.corpus = corpus
        self.gzipped = {r.etag: gzip.compress(r.body, mtime=0) for r in corpus.values()}  # compressed once, not per request
        self.requests: list[tuple[str, str, float, int]] = []  # host, path, arrival, status
        self.open = self.peak_open = self.accepted = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        self.open += 1
        self.accepted += 1
        self.peak_open = max(self.peak_open, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.monotonic()
                keep_alive = self.respond(host, head, arrived, writer)
                await writer.drain()
                if not keep_alive:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the client closed the connection (or sent garbage): nothing to answer
        except asyncio.CancelledError:
            pass  # the server is stopping with the connection open
        finally:
            self.open -= 1
            writer.close()

    def respond(self, host: str, head: bytes, arrived: float, writer: asyncio.StreamWriter) -> bool:
        """Write the response to one request head; return whether the connection stays open."""
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = (lines[0].split(" ") + ["", ""])[:3]
        headers = {name.strip().lower(): value.strip() for name, _, value in
                   (line.partition(":") for line in lines[1:] if line)}  # fmt: skip
        status, extra, body = self.answer(target, headers)
        self.requests.append((host, target, arrived, status))
        keep_alive = headers.get("connection", "").lower() != "close"
        out = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Modified' if status == 304 else 'Not Found'}",
               "Server: nginx", f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in extra.items())]  # fmt: skip
        if not keep_alive:
            out.append("Connection: close")
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + (body if method != "HEAD" else b""))
        return keep_alive

    def answer(self, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        found = lookup(self.corpus, target)
        if found is None:
            return 404, {"Content-Type": "text/html; charset=utf-8"}, render_not_found()
        use_gzip = accepts_gzip(headers.get("accept-encoding"))
        etag = f"W/{found.etag}" if use_gzip else found.etag  # nginx weakens gzipped ETags
        validators = {"ETag": etag, "Last-Modified": http_date(found.last_modified), "Vary": "Accept-Encoding"}
        if is_not_modified(found, etag, headers.get("if-none-match"), headers.get("if-modified-since")):
            return 304, validators, b""
        extra = {"Content-Type": found.content_type, **validators}
        if use_gzip:
            return 200, extra | {"Content-Encoding": "gzip"}, self.gzipped[found.etag]
        return 200, extra, found.body


def _listening_sockets(addresses: list[str]) -> tuple[int, list[socket.socket]]:
    """One socket per address, all on one port (the first address's ephemeral port)."""
    for _attempt in range(_BIND_ATTEMPTS):
        sockets: list[socket.socket] = []
        try:
            for address in addresses:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, sockets[0].getsockname()[1] if len(sockets) > 1 else 0))
                sock.listen(1024)
                sock.setblocking(False)
            return sockets[0].getsockname()[1], sockets
        except OSError as exc:
            for sock in sockets:
                sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"no port free on all of {addresses[0]}…{addresses[-1]}")


def _serve(hosts: int, pages: int, seed: int, log_path: Path) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per address, and the connections
    bench = build_bench_corpus(5 * pages, seed)
    server = _Server({path: bench.corpus[path] for path in bench.corpus})
    port, sockets = _listening_sockets([loopback_address(i) for i in range(hosts)])

    async def main() -> None:
        servers = [await asyncio.start_server(server.handle, sock=sock, limit=_HEAD_LIMIT) for sock in sockets]
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        threading.Thread(target=_until_stdin_closes, args=(loop, done), daemon=True).start()
        print(f"ready {port}", flush=True)
        await done
        for each in servers:
            each.close()

    asyncio.run(main())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    log_path.write_text(json.dumps({
        "requests": server.requests, "peak_connections": server.peak_open, "connections": server.accepted,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }), encoding="utf-8")  # fmt: skip


def _until_stdin_closes(loop: asyncio.AbstractEventLoop, done: asyncio.Future) -> None:
    sys.stdin.buffer.read()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    loop.call_soon_threadsafe(finish)


# --- the client side -------------------------------------------------------------------------
@dataclass
class HostLog:
    """What the server saw of a crawl."""

    requests: list[tuple[str, str, float, int]]  # host, path, arrival (monotonic), status
    peak_connections: int
    connections: int
    cpu_seconds: float
    by_host: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # host → (arrival, path), in order

    def __post_init__(self) -> None:
        grouped: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for host, path, arrived, _status in self.requests:
            grouped[host].append((arrived, path))
        self.by_host = {host: sorted(seen) for host, seen in grouped.items()}

    def closest_gaps(self) -> dict[str, float]:
        """Per host, the shortest time between two of its requests (hosts with one request: none)."""
        return {host: min(b[0] - a[0] for a, b in zip(seen, seen[1:]))
                for host, seen in self.by_host.items() if len(seen) > 1}  # fmt: skip

    def too_close(self, rate: float) -> dict[str, float]:
        """Hosts that saw two requests less than 1/rate seconds apart, with the closest gap."""
        return {host: gap for host, gap in self.closest_gaps().items() if gap < 1.0 / rate}

    def robots_requests(self) -> dict[str, int]:
        return {host: sum(1 for _, path in seen if path == "/robots.txt") for host, seen in self.by_host.items()}

    def slowest_minimum(self, rate: float) -> float:
        """The slowest host's own minimum time: its requests, one interval apart."""
        return max(((len(seen) - 1) / rate for seen in self.by_host.values()), default=0.0)

    def sum_of_minimums(self, rate: float) -> float:
        """What crawling the hosts one after another would take at least."""
        return sum((len(seen) - 1) / rate for seen in self.by_host.values())

    def span(self) -> float:
        """From the first request to the last, over every host."""
        moments = [arrived for _, _, arrived, _ in self.requests]
        return max(moments) - min(moments) if moments else 0.0

    def hosts_busy_at(self, moment: float) -> int:
        """Hosts whose first request came before `moment` and last one after it."""
        return sum(1 for seen in self.by_host.values() if seen[0][0] <= moment <= seen[-1][0])

    def busiest_moment(self) -> tuple[float, int]:
        """The instant (one of the requests') when most hosts were between their first and
        last request, and how many: all of them when hosts are crawled together, about one
        when one after another."""
        firsts = sorted(seen[0][0] for seen in self.by_host.values())
        lasts = sorted(seen[-1][0] for seen in self.by_host.values())
        best, started, ended = (firsts[0] if firsts else 0.0, 0), 0, 0
        for moment in firsts:  # the count only rises at a first request
            started += 1
            while ended < len(lasts) and lasts[ended] < moment:
                ended += 1
            best = max(best, (moment, started - ended), key=lambda pair: pair[1])
        return best


class ManyHosts:
    """`python -m bench.hosts` as a child process: `with ManyHosts(50, 3, log) as hosts:`."""

    def __init__(self, hosts: int, pages: int, log_path: Path, seed: int = DEFAULT_SEED) -> None:
        self.hosts, self.pages, self.log_path, self.seed = hosts, pages, log_path, seed
        self.port = 0
        self._proc: subprocess.Popen | None = None

    @property
    def addresses(self) -> list[str]:
        return [loopback_address(i) for i in range(self.hosts)]

    def start(self) -> ManyHosts:
        command = [sys.executable, "-m", "bench.hosts", "--hosts", str(self.hosts), "--pages", str(self.pages),
                   "--seed", str(self.seed), "--log", str(self.log_path)]  # fmt: skip
        self._proc = subprocess.Popen(command, cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._proc.stdout is not None
        ready = _read_line(self._proc.stdout, _START_TIMEOUT)
        if not ready.startswith("ready "):
            self.kill()
            raise RuntimeError(f"bench.hosts did not start (exit {self._proc.poll()}): {ready!r}")
        self.port = int(ready.split()[1])
        return self

    def sources(self, rate: float) -> list[dict]:
        """A sources.yaml entry per host: the project's entry for its template, on its address."""
        text = SOURCES_FILE.read_text(encoding="utf-8")
        entries: list[dict] = []
        for i, address in enumerate(self.addresses):
            raw = yaml.safe_load(expand_env(text, {"SAMPLE_SITE_URL": f"http://{address}:{self.port}"}))["sources"]
            template = raw[i % len(raw)]
            entries.append(template | {"name": f"{template['name']}-{i:04d}", "allowed_hosts": [address],
                                       "rate_limit_per_second": rate})  # fmt: skip
        return entries

    def stop(self) -> HostLog:
        """Stop serving (standard input closed) and read the log."""
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        finally:
            self.kill()
        raw = json.loads(self.log_path.read_text(encoding="utf-8"))
        requests = [(str(host), str(path), float(arrived), int(status)) for host, path, arrived, status in raw["requests"]]
        return HostLog(requests, raw["peak_connections"], raw["connections"], raw["cpu_seconds"])

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> ManyHosts:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.kill()


def _read_line(stream: IO[bytes], timeout: float) -> str:
    """The child's first line, or "" when it says nothing within `timeout` (or dies)."""
    found: list[bytes] = []
    reader = threading.Thread(target=lambda: found.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0].decode(errors="replace").strip() if found else ""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hosts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, required=True, help="loopback addresses to serve on")
    parser.add_argument("--pages", type=int, required=True, help="report pages in each host's column")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="corpus RNG seed")
    parser.add_argument("--log", type=Path, required=True, help="where to write the request log (JSON)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = _parse_args(None)
    _serve(args.hosts, args.pages, args.seed, args.log)
