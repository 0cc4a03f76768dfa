"""The analyst's answer, scored: `indicator_by_region_year` against hand-checked cells.

evaluation/analyst_cells.jsonl holds, for (region, year, indicator), the value an analyst
should see (read from the seed reports and the real texts by hand, checked twice), and
trap cells: values a naive pick would show (a subset, a cumulative count, a removal, the
old side of a pair) that must never be the cell's value. The pages are extracted and
loaded into a real DuckDB warehouse in a temporary directory, exactly as the nightly flow
loads them, and the view is read back.
"""

from __future__ import annotations

import csv
import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from evaluation.real import REAL_DIR, real_documents
from evaluation.run import seed_pages
from tasks.extract import extract_page
from tasks.records import PageRecord, Source

CELLS_FILE = Path(__file__).resolve().parent / "analyst_cells.jsonl"
REGIONS_FILE = Path(__file__).resolve().parent / "real_pages" / "regions.tsv"
TOLERANCE = 0.005  # relative: 611.17 shown as 611.1666… is the same answer


@dataclass
class CellScore:
    right: int = 0
    total: int = 0
    wrong: list[dict] = field(default_factory=list)  # gold cell and what the view shows
    traps_shown: list[dict] = field(default_factory=list)  # a must_not value the view shows
    ambiguous_cells: int = 0  # cells of the view with more than one distinct candidate
    view_cells: int = 0
    gold_sha256: str = ""  # of the cells file and the region table: a baseline knows what it was scored on

    @property
    def share(self) -> float:
        return self.right / self.total if self.total else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {"right": self.right, "total": self.total, "share": round(self.share, 4), "wrong": self.wrong,
                "traps_shown": self.traps_shown, "ambiguous_cells": self.ambiguous_cells,
                "view_cells": self.view_cells, "gold_sha256": self.gold_sha256}  # fmt: skip


def load_cells(path: Path = CELLS_FILE) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cells_available() -> bool:
    return CELLS_FILE.exists() and (REAL_DIR / "texts").is_dir()


def cells_gold_sha256() -> str:
    return hashlib.sha256(CELLS_FILE.read_bytes() + REGIONS_FILE.read_bytes()).hexdigest()


def evaluate_cells(cells: list[dict] | None = None) -> CellScore:
    given = cells is not None
    cells = cells if cells is not None else load_cells()
    docs = {cell["doc"] for cell in cells}
    with tempfile.TemporaryDirectory(prefix="govetl-cells-") as tmp:
        rows = _view_rows(_pages(docs), Path(tmp) / "cells.duckdb")
    score = score_cells(cells, rows)
    score.gold_sha256 = "" if given else cells_gold_sha256()
    return score


def score_cells(cells: list[dict], rows: list[dict]) -> CellScore:
    shown = {(r["region"], r["year"], r["indicator"]): r for r in rows}
    score = CellScore(view_cells=len(rows), ambiguous_cells=sum(1 for r in rows if r["disagree"]))
    for cell in cells:
        row = shown.get((cell["region"], cell["year"], cell["indicator"]))
        if "must_not" in cell:
            if row is not None and any(_same(row["value_norm"], bad) for bad in cell["must_not"]):
                score.traps_shown.append({**cell, "shown": row["value_norm"], "sentence": row["sentence"]})
            continue
        score.total += 1
        if row is not None and _same(row["value_norm"], cell["value"]) and row["unit_norm"] == cell["unit_norm"]:
            score.right += 1
        else:
            score.wrong.append({"cell": [cell["region"], cell["year"], cell["indicator"], cell["value"], cell["unit_norm"]],
                                "shown": None if row is None else [row["value_norm"], row["unit_norm"], row["sentence"]]})
    return score


def _same(got: float | None, expected: float) -> bool:
    return got is not None and abs(got - expected) <= TOLERANCE * max(1.0, abs(expected))


def _pages(docs: set[str]) -> list[PageRecord]:
    """The seed and real pages the cells come from, extracted as the nightly flow does."""
    pages: list[PageRecord] = []
    fetched = datetime(2026, 1, 1)
    for seed, path, html, source in seed_pages():
        if f"seeds/{seed}" in docs:
            url = "http://sample.test" + path
            pages.append(_record(html, url, source, fetched))
    regions = _regions()
    urls = _text_urls()
    for document in real_documents():
        if document.doc_id in docs:
            region = regions[document.doc_id]
            source = Source(name=f"real-{document.doc_id.replace('/', '-')}", region=region, listing_urls=(),
                            allowed_hosts=())  # fmt: skip
            pages.append(_record(document.html, urls.get(document.doc_id) or f"http://real.test/{document.doc_id}",
                                 source, fetched))  # fmt: skip
    return pages


def _record(html: str, url: str, source: Source | None, fetched: datetime) -> PageRecord:
    import hashlib

    extraction = extract_page(html, url, source)
    return PageRecord(source=source.name if source else "eval", url=url, final_url=url, fetch_id=None,
                      raw_sha256=hashlib.sha256(html.encode("utf-8")).hexdigest(), fetched_at=fetched,
                      extraction=extraction)  # fmt: skip


def _view_rows(pages: list[PageRecord], path: Path) -> list[dict]:
    from warehouse import connect, load_pages, start_run

    con = connect(path)
    try:
        start_run(con, "eval-cells")
        load_pages(con, "eval-cells", pages, datetime(2026, 1, 1))
        cursor = con.execute("select region, year, indicator, value_norm, unit_norm, sentence, disagree "
                             "from indicator_by_region_year")  # fmt: skip
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


def _regions() -> dict[str, str]:
    lines = [line for line in REGIONS_FILE.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return {row["doc"]: row["region"] for row in csv.DictReader(lines, delimiter="\t")}


def _text_urls() -> dict[str, str]:
    with (REAL_DIR / "texts" / "manifest.tsv").open(encoding="utf-8", newline="") as handle:
        return {f"texts/{row['id']}": row["url"] for row in csv.DictReader(handle, delimiter="\t") if row.get("url")}
