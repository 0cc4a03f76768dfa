"""One archived page on its way to the warehouse: decode (crawl) → extract → a PageRecord.

The seam between the two stages: the bytes the crawler archived are decoded as the
crawler decodes any download, extracted by the pure extractor, and turned into what
the loader takes, an extraction or a stored reason why the page is not a report, with the
search index's words of its sections marked (CPU work better done here, where pages are
extracted in parallel, than by the warehouse's single writer).

Nothing here reads the archive or the warehouse: an `ArchivedPage` carries its bytes, a
`Source` is plain data, so the same code runs in the flow's process or on a Dask worker
that shares no disk with it (flows/cluster.py).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from tasks.crawl.archive import ArchivedFetch
from tasks.crawl.encoding import decode_html
from tasks.extract import extract_page
from tasks.extract.vocab import page_rules
from tasks.records import Extraction, PageRecord, Source
from warehouse.writer.search import section_words

log = logging.getLogger(__name__)


@dataclass
class ArchivedPage:
    """An archived fetch with its body: what extracting it needs of the archive, the bytes
    themselves (never a path to them), so it can travel to a worker."""

    fetch: ArchivedFetch
    body: bytes


def page_record(fetch: ArchivedFetch, body: bytes, source: Source | None) -> PageRecord:
    """An archived fetch → what the loader takes: an extraction, or a reason to reject it."""
    record = PageRecord(
        source=fetch.source, url=fetch.url, final_url=fetch.final_url or fetch.url, fetch_id=fetch.fetch_id,
        raw_sha256=fetch.sha256 or hashlib.sha256(body).hexdigest(), fetched_at=fetch.fetched_at,
    )  # fmt: skip
    decoded = decode_html(body, fetch.content_type)
    if not looks_like_html(decoded.text):
        record.reject_reason = "not_html: served as HTML, but the body holds no HTML markup"
        return record
    try:
        record.extraction = extract_page(decoded.text, record.final_url, source)
    except Exception as exc:  # never expected (stages are isolated); still, a page is not lost silently
        log.exception("extraction failed for %s", fetch.url)
        record.reject_reason = f"extract_error: {type(exc).__name__}: {exc}"
        return record
    if decoded.replaced_chars:
        record.extraction.warnings.append(
            f"{decoded.replaced_chars} undecodable bytes replaced (decoded as {decoded.encoding} from {decoded.encoding_source})")
    record.reject_reason = not_a_report(record.extraction)
    if record.reject_reason is None:
        record.search_words = section_words(record.extraction.sections)
    return record


def looks_like_html(text: str) -> bool:
    """Markup near the top: an <html>, <body>, <div>, <p> … tag in the first 8 KB."""
    return _HTML_TAG.search(text, 0, 8192) is not None


_HTML_TAG = re.compile(r"<\s*(?:!doctype\s+html|html|head|body|div|p|table|meta|title)[\s>/]", re.IGNORECASE)


def not_a_report(extraction: Extraction) -> str | None:
    """Why an extracted page cannot be a report, or None when it is one. A page without a
    索引号 is a report (keyed by its document id or URL); an empty page or an error page
    (页面不存在, 404) is not."""
    report = extraction.report
    unparsable = next((w for w in extraction.warnings if w.startswith("parse failed")), None)
    if unparsable is not None:
        return f"unparsable: {unparsable}"
    if not report.index_no:
        return "no_key: the page states no 索引号 and has no URL to key it by"
    body = "".join((report.body_text or "").split())
    text = (report.title or "") + body[:ERROR_PAGE_MAX_CHARS]
    if len(body) < ERROR_PAGE_MAX_CHARS and any(phrase in text for phrase in page_rules()["error_page_phrases"]):
        return f"error_page: the page says {next(p for p in page_rules()['error_page_phrases'] if p in text)!r}"
    if not body and not extraction.attachments:
        return "empty: no text on the page"
    return None


ERROR_PAGE_MAX_CHARS = 200  # an error page says so in a few words; a report quoting 404 is long

