"""The real pages of ../shared/real_pages as documents the extractor can read.

Whole HTML pages are decoded exactly as the crawler decodes a download with no
Content-Type header (their bytes as saved, GBK ones too). A text opening is wrapped in
minimal HTML as evaluation/real_pages/README.md says: one <p> per line, pipe-table
lines as one <table>, and no <title>.
"""

from __future__ import annotations

import csv
import html
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from evaluation.gold import SHARED_DIR
from tasks.crawl.encoding import decode_html

REAL_DIR = SHARED_DIR / "real_pages"


@dataclass(frozen=True)
class RealDocument:
    doc_id: str  # "html/003" or "texts/001"
    html: str  # decoded page
    url: str | None  # where the page was read, when the manifest says
    raw: bytes  # the bytes as saved (for HTML pages; the wrapped text for texts)


def real_pages_available(real_dir: Path = REAL_DIR) -> bool:
    return (real_dir / "html" / "manifest.tsv").exists()


def real_documents(real_dir: Path = REAL_DIR) -> Iterator[RealDocument]:
    """Every saved page and text opening, HTML pages first, in file order."""
    if not real_pages_available(real_dir):
        return
    for path in sorted((real_dir / "html").glob("*.html")):
        yield html_document(path, real_dir)
    for path in sorted((real_dir / "texts").glob("*.txt")):
        yield text_document(path)


def html_document(path: Path, real_dir: Path = REAL_DIR) -> RealDocument:
    raw = path.read_bytes()
    url = _manifest_urls(real_dir / "html" / "manifest.tsv").get(path.stem)
    return RealDocument(f"html/{path.stem}", decode_html(raw, None).text, url, raw)


def text_document(path: Path) -> RealDocument:
    page = wrap_text(path.read_text(encoding="utf-8"))
    return RealDocument(f"texts/{path.stem}", page, None, page.encode("utf-8"))


def wrap_text(text: str) -> str:
    """A text opening as minimal HTML: <p> per line, pipe-table runs as a <table>, no <title>."""
    parts: list[str] = []
    rows: list[str] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if line.startswith("|") and line.endswith("|") and len(line) > 1:
            cells = [html.escape(cell.strip()) for cell in line[1:-1].split("|")]
            rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
            continue
        if rows:
            parts.append("<table>" + "".join(rows) + "</table>")
            rows = []
        if line:
            parts.append(f"<p>{html.escape(line)}</p>")
    if rows:
        parts.append("<table>" + "".join(rows) + "</table>")
    return '<html><head><meta charset="utf-8"></head><body><div>' + "\n".join(parts) + "</div></body></html>"


def _manifest_urls(manifest: Path) -> dict[str, str]:
    """Page id → its original URL where the manifest states one plainly (http…, not a guess)."""
    urls = {}
    with manifest.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            found = row.get("original_url", "").split()
            if found and found[0].startswith("http"):
                urls[row["id"]] = found[0]
    return urls
