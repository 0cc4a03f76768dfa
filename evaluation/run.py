"""Run the extractor (and trafilatura, for comparison) over the bundled seed pages and score.

The pages are the sample site's renderings of the five seed reports, decoded exactly as
the crawler decodes what it downloads. `evaluate()` returns a JSON-ready dict; the
command prints a table and writes that dict (see evaluation/__main__.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from evaluation.gold import Gold, load_gold
from evaluation.score import PRF, score_body, score_key_indicators, score_metadata, score_metrics, score_outline, score_ranks
from sample_site.content import load_sample_sites
from sample_site.render import render_article
from tasks.crawl.encoding import decode_html
from tasks.extract import EXTRACTOR_VERSION, extract_page
from tasks.records import Extraction, Source
from tasks.settings import SOURCES_FILE
from tasks.sources import load_sources


def seed_pages() -> list[tuple[str, str, str, Source | None]]:
    """(gold doc id, url path, decoded html, source) for every seed report of the sample site."""
    sources = {s.name: s for s in load_sources(SOURCES_FILE)}
    pages = []
    for site in load_sample_sites():
        for article in site.articles:
            if article.seed:
                raw = render_article(site, article)
                html = decode_html(raw, site.content_type).text
                pages.append((article.seed, article.path, html, sources.get(site.key)))
    return sorted(pages)


def evaluate(gold: Gold | None = None, with_trafilatura: bool = True) -> dict:
    gold = gold or load_gold()
    pages = seed_pages()
    extractions, ours_seconds = _timed(lambda: {doc: extract_page(html, url, src) for doc, url, html, src in pages})
    docs = {doc: _score_doc(doc, extractions[doc], gold) for doc, *_ in pages}
    totals = {name: PRF() for name in ("outline", "metrics", "ranks")}
    for doc, _url, _html, _src in pages:
        for name in totals:
            totals[name].add(docs[doc].pop(f"_{name}"))
    keys = score_key_indicators(extractions, gold)
    report = {
        "extractor_version": EXTRACTOR_VERSION,
        "gold_sha256": gold.sha256,
        "documents": docs,
        "metadata_accuracy": _metadata_accuracy(docs),
        "body_passed": sum(all(d["body"][k] for k in ("starts", "ends", "no_chrome")) for d in docs.values()),
        "documents_scored": len(docs),
        "outline": totals["outline"].as_dict(),
        "metrics": totals["metrics"].as_dict(),
        "ranks": totals["ranks"].as_dict(),
        "key_indicators": {"found": sum(k.found for k in keys), "total": len(keys),
                           "missed": [vars(k) for k in keys if not k.found]},  # fmt: skip
        "ours": {"seconds": round(ours_seconds, 4), "pages": len(pages)},
    }
    if with_trafilatura:
        report["trafilatura"] = trafilatura_scores(pages, gold)
    return report


def _score_doc(doc: str, extraction: Extraction, gold: Gold) -> dict:
    outline, metrics, ranks = (score_outline(doc, extraction, gold), score_metrics(doc, extraction, gold),
                               score_ranks(doc, extraction, gold))  # fmt: skip
    return {
        "metadata": score_metadata(doc, extraction, gold),
        "body": score_body(doc, extraction.report.body_text, gold),
        "outline": outline.as_dict(), "metrics": metrics.as_dict(), "ranks": ranks.as_dict(),
        "warnings": extraction.warnings,
        "_outline": outline, "_metrics": metrics, "_ranks": ranks,
    }  # fmt: skip


def _metadata_accuracy(docs: dict) -> dict[str, float]:
    fields = next(iter(docs.values()))["metadata"].keys() if docs else []
    per_field = {f: sum(d["metadata"][f] for d in docs.values()) / len(docs) for f in fields}
    per_field["all"] = sum(per_field.values()) / len(per_field) if per_field else 0.0
    return per_field


def trafilatura_scores(pages: list, gold: Gold) -> dict:
    """trafilatura's main-content extraction on the same pages: the body checks only
    (it extracts no 政府信息公开 metadata fields, outline or metrics)."""
    import trafilatura

    texts, seconds = _timed(lambda: {doc: trafilatura.extract(html, url=url) or "" for doc, url, html, _ in pages})
    bodies = {doc: score_body(doc, text, gold) for doc, text in texts.items()}
    return {
        "version": trafilatura.__version__,
        "seconds": round(seconds, 4),
        "body_passed": sum(all(b[k] for k in ("starts", "ends", "no_chrome")) for b in bodies.values()),
        "documents": bodies,
    }


def _timed(run: Callable):
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start
