"""One archived page on its way to the warehouse: decode (crawl) → extract → a PageRecord.

The seam between the two stages: the bytes the crawler archived are decoded as the
crawler decodes any download, extracted by the pure extractor, and turned into what
the loader takes, an extraction or a stored reason why the page is not a report.
"""

from __future__ import annotations

import hashlib
import logging

from tasks.crawl.archive import ArchivedFetch
from tasks.crawl.encoding import decode_html
from tasks.extract import extract_page
from tasks.records import PageRecord, Source

log = logging.getLogger(__name__)


def page_record(fetch: ArchivedFetch, body: bytes, source: Source | None) -> PageRecord:
    """An archived fetch → what the loader takes: an extraction, or a reason to reject it."""
    record = PageRecord(
        source=fetch.source, url=fetch.url, final_url=fetch.final_url or fetch.url, fetch_id=fetch.fetch_id,
        raw_sha256=fetch.sha256 or hashlib.sha256(body).hexdigest(), fetched_at=fetch.fetched_at,
    )  # fmt: skip
    decoded = decode_html(body, fetch.content_type)
    try:
        record.extraction = extract_page(decoded.text, record.final_url, source)
    except Exception as exc:  # never expected (stages are isolated); still, a page is not lost silently
        log.exception("extraction failed for %s", fetch.url)
        record.reject_reason = f"extract_error: {type(exc).__name__}: {exc}"
        return record
    if decoded.replaced_chars:
        record.extraction.warnings.append(
            f"{decoded.replaced_chars} undecodable bytes replaced (decoded as {decoded.encoding} from {decoded.encoding_source})")
    if not record.extraction.report.index_no:
        record.reject_reason = "missing_index_no"
    return record

