"""Serve a `Corpus` over HTTP on loopback, with the behaviour real government servers show.

Standard library only. Features a crawler has to cope with: ETag/Last-Modified with 304s,
gzip when asked for, HEAD, an HTML 404, query strings (jcms ?pageNum pages; unknown queries
fall back to the bare path as static servers do) and, for GBK sites, a Content-Type without
charset. `Resource.status`/`headers` let a test stage a 503 or a redirect.
"""

from __future__ import annotations

import gzip
import logging
import sys
import threading
from collections.abc import MutableMapping
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import unquote, urlsplit

from sample_site.model import Resource
from sample_site.render import render_not_found

logger = logging.getLogger(__name__)


class SampleSiteServer:
    """`with SampleSiteServer(corpus) as server: requests.get(server.base_url + path)`.

    `corpus` is read on every request, so tests may replace entries between requests.
    """

    def __init__(
        self, corpus: MutableMapping[str, Resource], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.corpus = corpus
        self._httpd = _QuietHTTPServer((host, port), _make_handler(self))
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str)  # an AF_INET socket's name; typeshed also allows bytes
        return f"http://{host}:{port}"

    def start(self) -> SampleSiteServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},  # how long stop() may wait for the loop to notice
            name="sample-site",
            daemon=True,
        )
        self._thread.start()
        logger.info("sample site serving %d resources at %s", len(self.corpus), self.base_url)
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SampleSiteServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def lookup(corpus: MutableMapping[str, Resource], raw_path: str) -> Resource | None:
    """Exact path+query first, then the bare path; a directory means its index.html."""
    parts = urlsplit(raw_path)
    path = unquote(parts.path) or "/"
    if path.endswith("/"):
        path += "index.html"
    candidates = [f"{path}?{parts.query}", path] if parts.query else [path]
    for candidate in candidates:
        resource = corpus.get(candidate)
        if resource is not None:
            return resource
    return None


def accepts_gzip(header: str | None) -> bool:
    """True if Accept-Encoding lists gzip without q=0."""
    for item in (header or "").split(","):
        name, *params = (part.strip() for part in item.split(";"))
        if name.lower() not in ("gzip", "x-gzip"):
            continue
        q = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            return float(q) > 0
        except ValueError:
            return False
    return False


def is_not_modified(
    resource: Resource, etag: str, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """RFC 9110 §13.1: If-None-Match (weak comparison) wins; else compare If-Modified-Since."""
    if if_none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or etag.removeprefix("W/") in tags
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unparsable date is ignored, as the RFC says
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    return resource.last_modified.replace(microsecond=0) <= since


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(timezone.utc), usegmt=True)


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a hung client must not block shutdown

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # Crawlers hang up mid-response (timeouts, HEAD-then-abort); that is not a server bug.
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


def _make_handler(server: SampleSiteServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_SampleSiteHandler):
        owner = server

    return Handler


class _SampleSiteHandler(BaseHTTPRequestHandler):
    owner: SampleSiteServer
    protocol_version = "HTTP/1.1"  # keep-alive, like the real servers
    server_version = "nginx"

    def version_string(self) -> str:
        return self.server_version  # no "Python/3.x" banner, as on the real sites

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        logger.info("%s %s", self.address_string(), format % args)

    def _respond(self, send_body: bool) -> None:
        resource = lookup(self.owner.corpus, self.path)
        if resource is None:
            self._send_not_found(send_body)
            return
        if resource.status != 200:  # staged errors and redirects are sent as they are
            self._send(resource.status, resource, resource.body, {}, send_body)
            return
        use_gzip = accepts_gzip(self.headers.get("Accept-Encoding"))
        etag = f"W/{resource.etag}" if use_gzip else resource.etag  # nginx weakens gzipped ETags
        validators = {
            "ETag": etag,
            "Last-Modified": http_date(resource.last_modified),
            "Vary": "Accept-Encoding",
        }
        conditions = (self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since"))
        if is_not_modified(resource, etag, *conditions):
            self._send(304, resource, b"", validators, send_body=False)
            return
        body = gzip.compress(resource.body, mtime=0) if use_gzip else resource.body
        extra = {**validators, "Content-Encoding": "gzip"} if use_gzip else validators
        self._send(200, resource, body, extra, send_body)

    def _send_not_found(self, send_body: bool) -> None:
        body = render_not_found()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send(
        self, status: int, resource: Resource, body: bytes, extra: dict[str, str], send_body: bool
    ) -> None:
        self.send_response(status)
        if status != 304:
            self.send_header("Content-Type", resource.content_type)
            self.send_header("Content-Length", str(len(body)))
        for name, value in {**extra, **resource.headers}.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)
