"""Run the extractor, trafilatura and GNE over the real pages and score them against the gold.

Ours is scored on everything the gold annotates; the two peers extract no 政府信息公开
metadata block, outline or metrics, so they are scored where they compete: the body
(start, end, no chrome), the title and the publish date. Listing pages are scored on
the article links and further pages discovery finds with no `article_url_pattern`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

from evaluation.real_gold import ArticleGold, ListingGold, RealGold, load_real_gold
from evaluation.real_score import (BodyScore, MetricScore, same_date, score_body, score_items, score_metadata,
                                   score_metrics, score_outline)  # fmt: skip
from evaluation.score import PRF, norm
from tasks.crawl.discover import parse_listing
from tasks.extract import extract_page
from tasks.records import Extraction
from tasks.sources import parse_source

log = logging.getLogger(__name__)
SEED_CHROME = ("当前位置", "浏览次数", "访问次数", "打印本页", "关闭本页", "关闭窗口", "设为首页", "网站地图", "网站标识码",
               "ICP备", "网安备")  # fmt: skip
PEERS = ("trafilatura", "gne")


def evaluate_real(gold: RealGold | None = None, with_peers: bool = True) -> dict[str, Any]:
    gold = gold or load_real_gold()
    docs = {doc_id: gold.documents[doc_id] for doc_id in gold.articles}
    started = time.perf_counter()
    extractions = {doc_id: extract_page(doc.html, doc.url) for doc_id, doc in docs.items()}
    ours_seconds = time.perf_counter() - started
    per_doc = {doc_id: _score_article(extractions[doc_id], gold.articles[doc_id]) for doc_id in docs}
    report: dict[str, Any] = {
        "gold_sha256": gold.sha256,
        "documents": {doc_id: _public(scores) for doc_id, scores in per_doc.items()},
        "totals": _totals(per_doc),
        "listings": {doc_id: score_listing(gold.documents[doc_id].html, listing)
                     for doc_id, listing in gold.listings.items()},  # fmt: skip
        "ours": {"seconds": round(ours_seconds, 4), "pages": len(docs)},
    }
    if with_peers:
        report["peers"] = {name: peer_scores(name, docs, gold) for name in PEERS}
    return report


def _score_article(extraction: Extraction, gold: ArticleGold) -> dict[str, Any]:
    return {
        "metadata": score_metadata(extraction, gold),
        "body": score_body(extraction.report.body_text, gold, list(SEED_CHROME)),
        "outline_1": score_outline(extraction, gold, 1),
        "outline_2": score_outline(extraction, gold, 2),
        "items": score_items(extraction, gold),
        "metrics": score_metrics(extraction, gold),
        "title": _same_text(extraction.report.title, gold.metadata["title"]),
        "date": same_date(extraction.report.publish_date.isoformat() if extraction.report.publish_date else None,
                          gold.metadata["publish_date"]),  # fmt: skip
        "warnings": extraction.warnings,
    }


def _same_text(got: str | None, expected: str | None) -> bool:
    return (got is None and expected is None) or (got is not None and expected is not None and norm(got) == norm(expected))


def _public(scores: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in scores.items():
        if isinstance(value, PRF):
            out[name] = value.as_dict()
        elif isinstance(value, (BodyScore, MetricScore)):
            out[name] = {**asdict(value), **({"ok": value.ok} if isinstance(value, BodyScore) else {})}
            if isinstance(value, MetricScore):
                out[name]["recall"], out[name]["precision"] = value.recall.as_dict(), value.precision.as_dict()
        else:
            out[name] = value
    return out


def _totals(per_doc: dict[str, dict[str, Any]]) -> dict[str, Any]:
    fields = next(iter(per_doc.values()))["metadata"].keys() if per_doc else []
    n = max(1, len(per_doc))
    metadata = {f: sum(d["metadata"][f] for d in per_doc.values()) / n for f in fields}
    totals: dict[str, Any] = {
        "documents": len(per_doc),
        "metadata_accuracy": sum(metadata.values()) / max(1, len(metadata)),
        "metadata_fields": metadata,
        "body_passed": sum(d["body"].ok for d in per_doc.values()),
        "chrome_pages": sum(not d["body"].no_chrome for d in per_doc.values()),
        "title_right": sum(d["title"] for d in per_doc.values()),
        "date_right": sum(d["date"] for d in per_doc.values()),
    }
    for name in ("outline_1", "outline_2", "items"):
        total = PRF()
        for d in per_doc.values():
            total.add(d[name])
        totals[name] = total.as_dict()
    recall, precision, right, judged, kinds = PRF(), PRF(), 0, 0, 0
    for d in per_doc.values():
        recall.add(d["metrics"].recall)
        precision.add(d["metrics"].precision)
        right, judged = right + d["metrics"].subject_right, judged + d["metrics"].subject_total
        kinds += d["metrics"].kind_right
    totals["metrics_recall"] = recall.as_dict()
    totals["metrics_precision"] = precision.as_dict()
    totals["subjects"] = {"right": right, "judged": judged, "share": round(right / judged, 4) if judged else 1.0}
    totals["kinds"] = {"right": kinds, "judged": judged, "share": round(kinds / judged, 4) if judged else 1.0}
    return totals


# --- listings ------------------------------------------------------------------------------------
def score_listing(html: str, gold: ListingGold) -> dict[str, Any]:
    # every host the gold's links live on is allowed (a search page lists many sites): the
    # host filter is configuration, what is scored is telling articles from the rest
    hosts = sorted({host for u in [gold.assumed_url, *gold.articles, *gold.not_articles]
                    if (host := urlsplit(u).hostname)})
    source = parse_source({"name": "eval", "region": "-", "listing_urls": [gold.assumed_url], "allowed_hosts": hosts})
    page = parse_listing(html, gold.assumed_url, source)
    found = [link.url for link in page.links]
    articles = PRF(tp=len(set(found) & set(gold.articles)), fp=len(set(found) - set(gold.articles)),
                   fn=len(set(gold.articles) - set(found)))  # fmt: skip
    return {"articles": articles.as_dict(), "wrongly_taken": sorted(set(found) & set(gold.not_articles)),
            "next_pages": sorted(set(page.next_pages) & set(gold.next_pages)), "next_pages_gold": len(gold.next_pages)}


# --- peers ---------------------------------------------------------------------------------------
def peer_scores(name: str, docs: dict, gold: RealGold) -> dict[str, Any]:
    run = _peer(name)
    started = time.perf_counter()
    outputs = {doc_id: run(doc.html, doc.url) for doc_id, doc in docs.items()}
    seconds = time.perf_counter() - started
    per_doc: dict[str, dict[str, Any]] = {}
    for doc_id, (body, title, date) in outputs.items():
        article = gold.articles[doc_id]
        body_score = score_body(body, article, list(SEED_CHROME))
        per_doc[doc_id] = {"body": body_score.ok, "body_detail": asdict(body_score),
                           "title": _same_text(title, article.metadata["title"]),
                           "date": same_date(date, article.metadata["publish_date"])}  # fmt: skip
    return {
        "version": _version(name), "seconds": round(seconds, 4),
        "body_passed": sum(d["body"] for d in per_doc.values()),
        "chrome_pages": sum(not d["body_detail"]["no_chrome"] for d in per_doc.values()),
        "title_right": sum(d["title"] for d in per_doc.values()),
        "date_right": sum(d["date"] for d in per_doc.values()),
        "documents": per_doc,
    }  # fmt: skip


PeerOutput = tuple[str | None, str | None, str | None]  # body, title, date


def _peer(name: str) -> Callable[[str, str | None], PeerOutput]:
    if name == "trafilatura":
        import trafilatura

        def run_trafilatura(html: str, url: str | None) -> PeerOutput:
            found = trafilatura.extract(html, url=url, output_format="json", with_metadata=True)
            data = json.loads(found) if found else {}
            return data.get("text"), data.get("title"), data.get("date")

        return _guarded(run_trafilatura)
    from gne import GeneralNewsExtractor

    extractor = GeneralNewsExtractor()

    def run_gne(html: str, url: str | None) -> PeerOutput:
        found = extractor.extract(html)
        return found.get("content"), found.get("title"), found.get("publish_time")

    return _guarded(run_gne)


def _guarded(run: Callable[[str, str | None], PeerOutput]) -> Callable[[str, str | None], PeerOutput]:
    """A peer that raises on a page yields nothing for it (scored as a miss), not a failed evaluation."""
    def guarded(html: str, url: str | None) -> PeerOutput:
        try:
            return run(html, url)
        except Exception as exc:  # a peer's own failure on an odd page
            log.debug("peer failed: %s", exc)
            return None, None, None

    return guarded


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)
