"""Extract one page: metadata, cleaned body, outline, metrics and ranks.

`extract_page(html, url, source)` is a pure function of its inputs. Each stage runs on
its own: a stage that breaks on an odd page records a warning and the page still yields
everything the other stages found (a page is never lost to one rule).

`python -m tasks.extract PAGE.html` runs it on one page from the command line
(tasks/extract/__main__.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import TypeVar

from tasks.extract.body import Body, clean_body, locate_body
from tasks.extract.head import read_signature
from tasks.extract.keys import report_key
from tasks.extract.metadata import PageMetadata, complete_from_edges, extract_metadata, report_years
from tasks.extract.metrics import extract_metrics, iter_sentences, max_metrics_per_page
from tasks.extract.outline import Outline, flat_outline, parse_outline, split_unbroken_folded
from tasks.extract.page import empty_document, parse_page
from tasks.extract.ranks import extract_ranks
from tasks.extract.text import fold_lines
from tasks.records import Extraction, Metric, Report, Source

# Bump when a change to the rules changes what pages yield: reprocessing records it per report.
EXTRACTOR_VERSION = "2.0.0"  # 2.0: keys for pages without 索引号, kinds of figures, real-page rules (issues 16, 18)

log = logging.getLogger(__name__)
T = TypeVar("T")


def extract_page(html: str, url: str | None = None, source: Source | None = None) -> Extraction:
    warnings: list[str] = []
    parsed = _stage("parse", lambda: parse_page(html), None, warnings)
    root = parsed[0] if parsed is not None else empty_document()
    warnings += parsed[1] if parsed is not None else []
    body_selectors = source.body_selectors if source else ()
    title_selectors = source.title_selectors if source else ()
    body: Body = _stage("body", lambda: locate_body(root, body_selectors), Body([], None, "failed"), warnings)
    skip = body.container if body.method != "page" else None  # a whole-page body holds the metadata
    metadata = _stage("metadata", lambda: extract_metadata(root, skip, title_selectors), PageMetadata(), warnings)
    title = metadata.get("title")
    if body.container is not None:
        body = _stage("body", lambda: clean_body(body, title), body, warnings)
    # the body's paragraphs folded once (clean_body has them), for the signature and the outline
    folded: list[str] | None = body.folded
    if folded is None:
        folded = _stage("body", lambda: fold_lines(body.paragraphs), None, warnings)
    _stage("metadata", lambda: complete_from_edges(metadata, body.head, read_signature(body.paragraphs, folded)),
           None, warnings)  # fmt: skip
    title = metadata.get("title")
    warnings += body.warnings + metadata.warnings
    summary_year, plan_year = report_years(title)
    key = report_key(metadata.get("index_no"), url, metadata.canonical_url)
    index_no = key.key if key else None  # the report's key: its 索引号, else one of its own
    outline: Outline = _stage(
        "outline", lambda: _outline(body.paragraphs, folded, summary_year, plan_year, title, index_no), None, warnings,
    ) or flat_outline(body.paragraphs, index_no)  # fmt: skip
    warnings += outline.warnings
    report = Report(
        index_no=index_no, source=source.name if source else None, region=source.region if source else None,
        url=url, title=title, publisher=metadata.get("publisher"),
        publish_date=metadata.dates.get("publish_date"), written_date=metadata.dates.get("written_date"),
        doc_number=metadata.get("doc_number"), topic=metadata.get("topic"), category=metadata.get("category"),
        disclosure_mode=metadata.get("disclosure_mode"), disclosure_scope=metadata.get("disclosure_scope"),
        summary_year=summary_year, plan_year=plan_year, body_text=outline.body_text or None,
        extractor_version=EXTRACTOR_VERSION, key_kind=key.kind if key else None,
    )  # fmt: skip
    report.content_sha256 = content_hash(report)
    # the body's sentences, cut once for the two stages that read them
    sentences = _stage("metrics", lambda: iter_sentences(outline.folded_text), None, warnings)
    metrics: list[Metric] = _stage("metrics", lambda: extract_metrics(outline, index_no, sentences), [], warnings)
    if len(metrics) >= max_metrics_per_page():
        warnings.append(f"metrics: stopped at {len(metrics)}, the most a page may yield")
    return Extraction(
        report=report,
        sections=outline.sections,
        metrics=metrics,
        ranks=_stage("ranks", lambda: extract_ranks(outline, index_no, sentences), [], warnings),
        warnings=warnings,
        attachments=body.attachments,
    )


def _outline(paragraphs: list[str], folded: list[str] | None, summary_year: int | None, plan_year: int | None,
             title: str | None, index_no: str | None) -> Outline:
    """The outline of the body's paragraphs, cut before run-in headings (their folds passed on)."""
    pieces, folded_pieces = split_unbroken_folded(paragraphs, folded)
    return parse_outline(pieces, summary_year, plan_year, title, index_no, folded_pieces)


def _stage(name: str, run: Callable[[], T], fallback: T, warnings: list[str]) -> T:
    try:
        return run()
    except Exception as exc:  # one broken rule must not lose the page: record and go on
        log.warning("extraction stage %s failed: %s", name, exc, exc_info=True)
        warnings.append(f"{name} failed: {type(exc).__name__}: {exc}")
        return fallback


def content_hash(report: Report) -> str:
    """Hash of what the page says (metadata and body), not of its bytes or of our rules:
    a view counter or a new extractor version does not make a page 'changed'."""
    fields = ("index_no", "title", "publisher", "publish_date", "written_date", "doc_number", "topic",
              "category", "disclosure_mode", "disclosure_scope", "body_text")  # fmt: skip
    payload = json.dumps([str(getattr(report, f)) for f in fields], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
