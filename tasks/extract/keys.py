"""The key a report is stored under: its 索引号, or one of its own when the page states none.

Many real columns never print a 索引号. Such a page is still a report: it is keyed by the
document id its CMS gives it (art_1229041658_4241502.html, t20230530_3116889.html,
content_1663341.html, post_4289277.html, ?newsid=128061 …; patterns in config/keys.yaml),
read from the page's canonical URL or its own URL, else by the canonical URL itself.
`key_kind` says which: index_no | document_id | url. The same page always gets the same
key, so reruns stay idempotent whatever the kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from tasks.extract.vocab import key_rules

KEY_KINDS = ("index_no", "document_id", "url")


@dataclass(frozen=True)
class ReportKey:
    key: str
    kind: str  # one of KEY_KINDS


def report_key(index_no: str | None, url: str | None, canonical: str | None = None) -> ReportKey | None:
    """The report's key, or None when there is nothing to key it by (no 索引号, no URL)."""
    if index_no:
        return ReportKey(index_no, "index_no")
    address = canonical_url(canonical, url) or canonical_url(url)
    if address is None:
        return None
    document = document_id(address) or (document_id(url) if url and url != address else None)
    if document is not None:
        return ReportKey(f"{urlsplit(address).hostname}/{document}", "document_id")
    return ReportKey(address, "url")


def document_id(url: str | None) -> str | None:
    """The CMS's id of the document in `url` (the first pattern of config/keys.yaml that
    matches its path or query), as `name:value`."""
    if not url:
        return None
    parts = urlsplit(url)
    for name, pattern in _patterns():
        found = pattern.search(parts.path + ("?" + parts.query if parts.query else ""))
        if found:
            return f"{name}:{found.group('id')}"
    return None


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """An http(s) URL in one spelling: absolute, lower-case host, no default port, no
    fragment, tracking parameters dropped, the rest of the query sorted."""
    if not url:
        return None
    absolute = urljoin(base or "", url.strip())
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if parts.port and parts.port != {"http": 80, "https": 443}[parts.scheme]:
        host = f"{host}:{parts.port}"
    dropped = set(key_rules()["tracking_parameters"])
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in dropped))
    return urlunsplit((parts.scheme, host, parts.path or "/", query, ""))


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((row["name"], re.compile(row["pattern"])) for row in key_rules()["document_ids"])
