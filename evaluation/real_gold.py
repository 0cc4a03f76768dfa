"""Load and check the gold of the real pages (evaluation/real_pages/, format in its README).

Malformed annotations are refused before any scoring, as for the seed gold: a missing
key, a body boundary or chrome string that is not on the page, a chrome string inside
the gold body boundaries, a metric whose context and text cannot be found.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import lxml.html

from evaluation.gold import GoldError
from evaluation.real import REAL_DIR, RealDocument, real_documents
from evaluation.score import norm

GOLD_DIR = Path(__file__).resolve().parent / "real_pages"
META_FIELDS = ("index_no", "title", "publisher", "publish_date", "written_date", "doc_number",
               "summary_year", "plan_year")  # fmt: skip
ARTICLE_KEYS = {"page", "kind", "metadata", "body_starts", "body_ends", "chrome", "attachments", "outline", "items",
                "metrics", "metrics_complete", "not_metrics"}  # fmt: skip
LISTING_KEYS = {"page", "kind", "assumed_url", "articles", "not_articles", "next_pages", "paginated_by"}
METRIC_KEYS = {"text", "context", "value", "unit", "value_norm", "unit_norm", "subject", "kind"}


@dataclass
class ArticleGold:
    doc_id: str  # "html/003", "texts/001"
    metadata: dict
    body_starts: str
    body_ends: str
    chrome: list[str]
    attachments: list[str]
    outline: list[dict]
    items: list[dict]
    metrics: list[dict]
    metrics_complete: bool
    not_metrics: list[dict]


@dataclass
class ListingGold:
    doc_id: str
    assumed_url: str
    articles: list[str]
    not_articles: list[str]
    next_pages: list[str]
    declared_records: int | None
    paginated_by: str


@dataclass
class RealGold:
    articles: dict[str, ArticleGold] = field(default_factory=dict)
    listings: dict[str, ListingGold] = field(default_factory=dict)
    documents: dict[str, RealDocument] = field(default_factory=dict)
    sha256: str = ""  # of the gold files and the pages they annotate


def real_gold_available(real_dir: Path = REAL_DIR, gold_dir: Path = GOLD_DIR) -> bool:
    return (real_dir / "html" / "manifest.tsv").exists() and any(gold_dir.glob("*/*.json"))


def load_real_gold(real_dir: Path = REAL_DIR, gold_dir: Path = GOLD_DIR) -> RealGold:
    documents = {doc.doc_id: doc for doc in real_documents(real_dir)}
    gold = RealGold(documents=documents)
    digest = hashlib.sha256()
    for path in sorted(gold_dir.glob("*/*.json")):
        doc_id = f"{path.parent.name}/{path.stem}"
        if doc_id not in documents:
            raise GoldError(f"{path}: no page {doc_id} in {real_dir}")
        raw = json.loads(path.read_text(encoding="utf-8"))
        digest.update(doc_id.encode() + path.read_bytes() + documents[doc_id].raw)
        if raw.get("kind") == "listing":
            gold.listings[doc_id] = _listing(doc_id, raw, path)
        else:
            gold.articles[doc_id] = _article(doc_id, raw, path, documents[doc_id])
    gold.sha256 = digest.hexdigest()
    return gold


def _listing(doc_id: str, raw: dict, path: Path) -> ListingGold:
    missing = LISTING_KEYS - set(raw)
    if missing:
        raise GoldError(f"{path}: listing gold lacks {sorted(missing)}")
    return ListingGold(doc_id, raw["assumed_url"], list(raw["articles"]), list(raw["not_articles"]),
                       list(raw["next_pages"]), raw.get("declared_records"), raw["paginated_by"])  # fmt: skip


def _article(doc_id: str, raw: dict, path: Path, document: RealDocument) -> ArticleGold:
    missing = ARTICLE_KEYS - set(raw)
    if missing:
        raise GoldError(f"{path}: article gold lacks {sorted(missing)}")
    if set(META_FIELDS) - set(raw["metadata"]):
        raise GoldError(f"{path}: metadata lacks {sorted(set(META_FIELDS) - set(raw['metadata']))}")
    page = norm(visible_text(document.html))
    starts, ends = norm(raw["body_starts"]), norm(raw["body_ends"])
    if not starts or not ends or starts not in page or ends not in page:
        raise GoldError(f"{path}: body_starts/body_ends empty or not on the page")
    start = page.find(starts)
    end = page.find(ends, start)
    if end < 0:
        raise GoldError(f"{path}: body_ends does not follow body_starts on the page")
    body = page[start:end + len(ends)]
    for marker in raw["chrome"]:
        if norm(marker) not in page:
            raise GoldError(f"{path}: chrome {marker!r} is not on the page")
        if norm(marker) in body and page.count(norm(marker)) == body.count(norm(marker)):
            raise GoldError(f"{path}: chrome {marker!r} occurs only inside the gold body")
    for row in raw["metrics"]:
        if METRIC_KEYS - set(row):
            raise GoldError(f"{path}: metric {row.get('text')!r} lacks {sorted(METRIC_KEYS - set(row))}")
        if norm(row["context"] + row["text"]) not in page:
            raise GoldError(f"{path}: metric context+text {row['context'] + row['text']!r} is not on the page")
    return ArticleGold(doc_id, raw["metadata"], raw["body_starts"], raw["body_ends"], list(raw["chrome"]),
                       list(raw["attachments"]), list(raw["outline"]), list(raw["items"]), list(raw["metrics"]),
                       bool(raw["metrics_complete"]), list(raw["not_metrics"]))  # fmt: skip


def visible_text(html: str) -> str:
    """The page's text with tags, comments, processing instructions and styles dropped (a
    CMS wraps values in comments: 来源：<!--begin-->市政府办公室<!--end-->)."""
    root = lxml.html.document_fromstring(html or "<html></html>")
    parts: list[str] = []
    for node in root.iter():
        if node.text and isinstance(node.tag, str) and node.tag != "style":
            parts.append(node.text)
        if node.tail:
            parts.append(node.tail)
    return "\n".join(parts)
