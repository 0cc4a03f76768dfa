"""A loopback HTTP server with one endpoint per network fault, for the fetch and flow tests.

    with FaultServer() as server:
        fetcher.fetch(server.url("/retry-after"))
        assert server.hits("/retry-after") == 2

Routing is a plain dict, path (without query) → handler. A handler receives the
request handler and how many times its path has been hit (1 for the first request),
which makes "fail, then succeed" endpoints deterministic. Add endpoints with
`server.routes["/path"] = handler`, or extend `default_routes()`.
Every request is counted and time-stamped per path (`hits`, `arrivals`), so a test can
assert "never requested" or measure the spacing the rate limiter produced.
`FakeSite` lays a government column over the routes (a listing page linking report
pages, any of which may be a fault) for the flow-level tests.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import logging
import random
import re
import socket
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

Handler = Callable[["FaultRequestHandler", int], None]

CAP_FOR_TESTS = 1024 * 1024  # bytes; tests set the fetcher's max_bytes to this
PAGE_HTML = (
    "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>政府工作报告</title></head>"
    "<body><p>索引号：001-2024-0001</p><p>2023年全县地区生产总值增长5.6%。</p></body></html>"
).encode("utf-8")
# GBK-only characters (镕 堃 喆 珺 are outside GB2312) and no charset anywhere.
GBK_TEXT = "<html><head><title>关于朱镕基同志的报告</title></head><body><p>王堃、李喆、张珺参加会议。全县财政收入12.3亿元。</p></body></html>"
GBK_PAGE = GBK_TEXT.encode("gbk")
PDF_BODY = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
GARBAGE = random.Random(20240501).randbytes(4096)  # deterministic noise
GZIP_BOMB = gzip.compress(b"\0" * (16 * CAP_FOR_TESTS), compresslevel=9)  # ~16 KB on the wire
ETAG = '"report-v1"'
LAST_MODIFIED = formatdate(1_700_000_000, usegmt=True)
ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n"


class FaultRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers; faults close explicitly
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stalls
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path
        hit = self.server.fault.count(path)
        handler = self.server.fault.routes.get(path, not_found)
        handler(self, hit)

    def query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}

    def send(self, status: int, body: bytes = b"", content_type: str | None = "text/html; charset=utf-8",
             headers: dict[str, str] | None = None) -> None:  # fmt: skip
        """A complete response with Content-Length."""
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def reset_connection(self) -> None:
        """Abort the TCP connection (RST, not FIN), as a crashing server or middlebox does."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (base-class name)
        log.debug("faultserver: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fault: FaultServer

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hanging up on a fault endpoint is the expected case, not a server bug.
        log.debug("faultserver: handler error for %s", client_address, exc_info=True)


class FaultServer:
    """ThreadingHTTPServer on 127.0.0.1, random port, in a daemon thread."""

    def __init__(self, routes: dict[str, Handler] | None = None) -> None:
        self.routes: dict[str, Handler] = default_routes() if routes is None else dict(routes)
        self._hits: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()
        self.stopping = threading.Event()  # lets dripping handlers end when the server stops
        self._httpd = _Server(("127.0.0.1", 0), FaultRequestHandler)
        self._httpd.fault = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="faultserver", daemon=True
        )  # a short poll makes shutdown quick

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def hits(self, path: str) -> int:
        with self._lock:
            return len(self._hits.get(path, ()))

    def arrivals(self, path: str) -> list[float]:
        """time.monotonic() of each request to `path`, in arrival order."""
        with self._lock:
            return list(self._hits.get(path, ()))

    def count(self, path: str) -> int:
        with self._lock:
            self._hits[path].append(time.monotonic())
            return len(self._hits[path])

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


# --- handlers --------------------------------------------------------------------------
def page(req: FaultRequestHandler, hit: int) -> None:
    req.send(200, PAGE_HTML)


def not_found(req: FaultRequestHandler, hit: int) -> None:
    req.send(404, b"<html><body>not found</body></html>")


def forbidden(req: FaultRequestHandler, hit: int) -> None:
    req.send(403, b"<html><body>forbidden</body></html>")


def robots(req: FaultRequestHandler, hit: int) -> None:
    req.send(200, ROBOTS_TXT, "text/plain")


def retry_after_then_ok(req: FaultRequestHandler, hit: int) -> None:
    if hit == 1:
        req.send(429, b"slow down", headers={"Retry-After": "1"})
    else:
        page(req, hit)


def retry_after_hour(req: FaultRequestHandler, hit: int) -> None:
    req.send(503, b"maintenance", headers={"Retry-After": "3600"})


def error_then_ok(req: FaultRequestHandler, hit: int) -> None:
    if hit == 1:
        req.send(500, b"internal error")
    else:
        page(req, hit)


def unavailable(req: FaultRequestHandler, hit: int) -> None:
    req.send(503, b"unavailable")


def reset(req: FaultRequestHandler, hit: int) -> None:
    req.reset_connection()


def reset_mid_body(req: FaultRequestHandler, hit: int) -> None:
    req.send_response(200)
    req.send_header("Content-Type", "text/html; charset=utf-8")
    req.send_header("Transfer-Encoding", "chunked")
    req.end_headers()
    req.wfile.write(b"%x\r\n%s\r\n" % (len(PAGE_HTML), PAGE_HTML))
    req.wfile.flush()
    time.sleep(0.05)  # let the first chunk reach the client before the reset
    req.reset_connection()


def drip(req: FaultRequestHandler, hit: int) -> None:
    """One byte every 0.5 s, far below any read timeout, for 100 bytes."""
    req.send_response(200)
    req.send_header("Content-Type", "text/html")
    req.send_header("Content-Length", "100")
    req.end_headers()
    for _ in range(100):
        if req.server.fault.stopping.wait(0.5):
            break
        try:
            req.wfile.write(b"x")
        except OSError:  # the client gave up, as it should
            break
    req.close_connection = True


def truncated(req: FaultRequestHandler, hit: int) -> None:
    req.send_response(200)
    req.send_header("Content-Type", "text/html")
    req.send_header("Content-Length", "10000")
    req.end_headers()
    req.wfile.write(PAGE_HTML[:100])
    req.close_connection = True


def gzip_bomb(req: FaultRequestHandler, hit: int) -> None:
    req.send(200, GZIP_BOMB, headers={"Content-Encoding": "gzip"})


def gzip_page(req: FaultRequestHandler, hit: int) -> None:
    req.send(200, gzip.compress(PAGE_HTML), headers={"Content-Encoding": "gzip"})


def oversized(req: FaultRequestHandler, hit: int) -> None:
    req.send(200, b"<html>" + b"a" * (2 * CAP_FOR_TESTS) + b"</html>")


def oversized_unannounced(req: FaultRequestHandler, hit: int) -> None:
    """Too big, with no Content-Length: only counting while streaming catches it."""
    req.send_response(200)
    req.send_header("Content-Type", "text/html")
    req.send_header("Connection", "close")
    req.end_headers()
    try:
        for _ in range(32):
            req.wfile.write(b"a" * (CAP_FOR_TESTS // 8))
    except OSError:
        pass
    req.close_connection = True


def redirect_to(location: str, status: int = 302) -> Handler:
    def handler(req: FaultRequestHandler, hit: int) -> None:
        req.send(status, b"", headers={"Location": location.format(port=req.server.server_address[1])})

    return handler


def stub(head: str = "", body: str = "页面跳转中……") -> Handler:
    """A redirect stub: a tiny page whose markup sends a browser elsewhere ({port} is filled in)."""

    def handler(req: FaultRequestHandler, hit: int) -> None:
        port = req.server.server_address[1]
        markup = f"<html><head><meta charset=\"utf-8\">{head}</head><body>{body}</body></html>"
        req.send(200, markup.replace("{port}", str(port)).encode())

    return handler


def not_modified_unasked(req: FaultRequestHandler, hit: int) -> None:
    """304 whatever the request carried: a broken cache in front of the site."""
    req.send(304, b"", None, headers={"ETag": ETAG})


def longer_than_declared(req: FaultRequestHandler, hit: int) -> None:
    """Content-Length says 120 bytes; the page is longer. A client reads 120 and stops."""
    req.send_response(200)
    req.send_header("Content-Type", "text/html; charset=utf-8")
    req.send_header("Content-Length", "120")
    req.end_headers()
    req.wfile.write(PAGE_HTML)
    req.close_connection = True


def redirect_chain(req: FaultRequestHandler, hit: int) -> None:
    """/redirect-chain?n=3 → ?n=2 → ?n=1 → /page."""
    left = int(req.query().get("n", "0"))
    location = f"/redirect-chain?n={left - 1}" if left > 1 else "/page"
    req.send(302, b"", headers={"Location": location})


def gbk_no_charset(req: FaultRequestHandler, hit: int) -> None:
    req.send(200, GBK_PAGE, "text/html")


def garbage(req: FaultRequestHandler, hit: int) -> None:
    req.send(200, GARBAGE, "text/html")


def pdf(req: FaultRequestHandler, hit: int) -> None:
    req.send(200, PDF_BODY, "application/pdf")


def pdf_as_html(req: FaultRequestHandler, hit: int) -> None:
    req.send(200, PDF_BODY, "text/html; charset=utf-8")


def conditional(req: FaultRequestHandler, hit: int) -> None:
    validators = {"ETag": ETAG, "Last-Modified": LAST_MODIFIED}
    if req.headers.get("If-None-Match") == ETAG or req.headers.get("If-Modified-Since") == LAST_MODIFIED:
        req.send(304, b"", None, headers=validators)
    else:
        req.send(200, PAGE_HTML, headers=validators)


def default_routes() -> dict[str, Handler]:
    return {
        "/robots.txt": robots,
        "/page": page,
        "/private/report": page,  # disallowed by robots.txt: must never be hit
        "/missing": not_found,
        "/forbidden": forbidden,
        "/retry-after": retry_after_then_ok,
        "/retry-after-hour": retry_after_hour,
        "/error-then-ok": error_then_ok,
        "/unavailable": unavailable,
        "/reset": reset,
        "/reset-mid-body": reset_mid_body,
        "/drip": drip,
        "/truncated": truncated,
        "/gzip-bomb": gzip_bomb,
        "/gzip-page": gzip_page,
        "/oversized": oversized,
        "/oversized-unannounced": oversized_unannounced,
        "/redirect-loop": redirect_to("/redirect-loop-b"),
        "/redirect-loop-b": redirect_to("/redirect-loop"),
        "/redirect-chain": redirect_chain,
        "/redirect-relative": redirect_to("page", status=301),
        "/redirect-offsite": redirect_to("http://localhost:{port}/page"),
        "/redirect-unroutable": redirect_to("http://crawler-test.invalid/page"),
        "/redirect-to-private": redirect_to("/private/report"),
        "/gbk-no-charset": gbk_no_charset,
        "/garbage": garbage,
        "/report.pdf": pdf,
        "/pdf-as-html": pdf_as_html,
        "/conditional": conditional,
        "/stub-meta": stub('<meta http-equiv="refresh" content="0; url=/page">'),
        "/stub-meta-late": stub('<meta content="3;URL=\'page\'" http-equiv="Refresh">'),
        "/stub-href": stub(body='<script type="text/javascript">window.location.href = "/page";</script>'),
        "/stub-assign": stub(body="<script>location = '/page'</script>"),
        "/stub-replace": stub(body='<script>\n  location.replace("/page");\n</script>'),
        "/stub-to-stub": stub('<meta http-equiv="refresh" content="0;url=/stub-href">'),
        "/stub-offsite": stub('<meta http-equiv="refresh" content="0;url=http://localhost:{port}/page">'),
        "/stub-loop": stub('<meta http-equiv="refresh" content="0;url=/stub-loop">'),
        "/refresh-without-url": stub('<meta http-equiv="refresh" content="300">', body="<p>索引号：001-2024-0001</p>"),
        "/report-with-location-script": stub(
            body="<p>" + "全县民政工作稳步推进。" * 40 + "</p><script>function home(){location.href='/';}</script>"),
        "/not-modified-unasked": not_modified_unasked,
        "/longer-than-declared": longer_than_declared,
    }


# --- a site: a column (listing) page linking report pages, for the flow tests ------------
def report_html(index_no: str | None, title: str, paragraphs: Sequence[str], publisher: str = "县民政局") -> bytes:
    """A minimal report page the extractor accepts: a 索引号 table, a title and a body.

    `title` and `paragraphs` are text: they are HTML-escaped here, so whatever they hold
    (quotes, SQL, "<script>") reaches the extractor as text. `index_no=None` leaves the
    索引号 row out.
    """
    esc = html.escape
    index_row = f"<tr><td>索引号：</td><td>{esc(index_no)}</td></tr>" if index_no is not None else ""
    body = "".join(f"<p>{esc(p)}</p>" for p in paragraphs)
    return (
        f"<html><head><meta charset=\"utf-8\"><title>{esc(title)}</title></head><body>"
        f"<table>{index_row}<tr><td>发布机构：</td><td>{esc(publisher)}</td></tr></table>"
        f"<h1>{esc(title)}</h1><div id=\"zoom\">{body}</div></body></html>"
    ).encode("utf-8")


def report_page(index_no: str | None, year: int = 2023, extra: str = "") -> bytes:
    """A plausible 工作总结 page with numbers, headings and a 索引号 (unless None)."""
    return report_html(index_no, f"县民政局{year}年工作总结", [
        f"{year}年，县民政局新增床位120张。{extra}",
        "一、主要工作",
        "（一）社会救助。低保对象5661户8802人。",
    ])


class FakeSite:
    """A government column on a FaultServer: one listing page linking report pages.

        site = FakeSite(server, "/a")
        site.article("1.html", report_page("X/2023-00001"))   # served with validators
        site.route("2.html", not_found)                          # any handler: a fault
        source = site.source("county-a")                         # a sources.yaml entry

    Article paths are `<prefix>/art/<name>`, linked from `<prefix>/list/index.html` in
    insertion order (or `site.order`). Pages added with `article` carry an ETag (their
    SHA-256) and answer a matching If-None-Match with 304, as real CMSs do; replace a
    body with `site.set_body(name, …)` to make the page change between runs.
    """

    def __init__(self, server: FaultServer, prefix: str = "/site") -> None:
        self.server, self.prefix = server, prefix.rstrip("/")
        self.listing_path = f"{self.prefix}/list/index.html"
        self.paths: list[str] = []  # listing order
        self.bodies: dict[str, tuple[bytes, str, bool]] = {}  # path → (body, content type, validators)
        server.routes[self.listing_path] = self._listing
        server.routes.setdefault("/robots.txt", robots)

    # -- building the site
    def path(self, name: str) -> str:
        return f"{self.prefix}/art/{name}"

    def url(self, name: str) -> str:
        return self.server.url(self.path(name))

    def article(self, name: str, body: bytes, content_type: str = "text/html; charset=utf-8",
                validators: bool = True) -> str:  # fmt: skip
        path = self.path(name)
        self.bodies[path] = (body, content_type, validators)
        return self.route(name, self._article)

    def route(self, name: str, handler: Handler) -> str:
        """Link `name` from the listing and serve it with `handler`; returns its path."""
        path = self.path(name)
        if path not in self.paths:
            self.paths.append(path)
        self.server.routes[path] = handler
        return path

    def set_body(self, name: str, body: bytes) -> None:
        path = self.path(name)
        _, content_type, validators = self.bodies[path]
        self.bodies[path] = (body, content_type, validators)

    def source(self, name: str, **extra: object) -> dict:
        """The sources.yaml entry of this column: loopback only, no rate limit."""
        return {
            "name": name, "region": f"{name}县",
            "listing_urls": [self.server.url(self.listing_path)],
            "allowed_hosts": ["127.0.0.1"],
            "article_url_pattern": re.escape(f"{self.prefix}/art/"),
            "rate_limit_per_second": 0,
        } | extra

    def article_hits(self) -> dict[str, int]:
        return {path: self.server.hits(path) for path in self.paths}

    # -- handlers
    def _listing(self, req: FaultRequestHandler, hit: int) -> None:
        items = "".join(
            f'<li><a href="{path}" title="报告{i}">报告{i}</a><span>2024-01-{i % 28 + 1:02d}</span></li>'
            for i, path in enumerate(self.paths)
        )
        req.send(200, f"<html><head><meta charset=\"utf-8\"><title>工作总结</title></head>"
                      f"<body><ul class=\"list\">{items}</ul></body></html>".encode())  # fmt: skip

    def _article(self, req: FaultRequestHandler, hit: int) -> None:
        body, content_type, validators = self.bodies[urlsplit(req.path).path]
        if not validators:
            req.send(200, body, content_type)
            return
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        if req.headers.get("If-None-Match") == etag:
            req.send(304, b"", None, headers={"ETag": etag})
        else:
            req.send(200, body, content_type, headers={"ETag": etag})


def refused_url(path: str = "/list/index.html") -> str:
    """A loopback URL on a port where nothing listens: connection refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
