"""Load and check the hand-checked gold files in ../shared/gold before any scoring.

Malformed annotations are refused up front (trafilatura's eval_common.validate idea): a
score computed against a broken gold file would look like a regression or a win.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tasks.settings import PROJECT_ROOT

SHARED_DIR = Path(os.environ.get("GOVETL_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
METADATA_FIELDS = ("index_no", "title", "publisher", "publish_date", "written_date", "doc_number", "topic",
                   "category", "disclosure_mode", "disclosure_scope", "summary_year", "plan_year", "region")  # fmt: skip
METRIC_KEYS = {"doc", "context", "text", "value", "unit", "value_norm", "unit_norm", "qualifier"}


class GoldError(ValueError):
    """A gold file is missing or malformed; the message names the file and the entry."""


@dataclass
class Gold:
    metadata: dict[str, dict]
    chrome_markers: list[str]
    outline: dict[str, list[dict]]
    metrics: dict[str, list[dict]]
    ranks: dict[str, list[dict]]
    key_indicators: list[dict]
    sha256: str  # of the gold files and the seeds, so a baseline knows what it was scored on


def gold_available(shared_dir: Path = SHARED_DIR) -> bool:
    return (shared_dir / "gold" / "metadata.json").exists()


def load_gold(shared_dir: Path = SHARED_DIR) -> Gold:
    gold_dir = shared_dir / "gold"
    if not gold_dir.is_dir():
        raise GoldError(f"{gold_dir} not found: the evaluation needs ../shared/gold")
    meta = json.loads((gold_dir / "metadata.json").read_text(encoding="utf-8"))
    gold = Gold(
        metadata=meta["docs"],
        chrome_markers=meta["chrome_markers"],
        outline={k: v for k, v in json.loads((gold_dir / "outline.json").read_text(encoding="utf-8")).items()
                 if not k.startswith("_")},  # fmt: skip
        metrics=_by_doc(_jsonl(gold_dir / "metrics.jsonl")),
        ranks=_by_doc(_jsonl(gold_dir / "ranks.jsonl")),
        key_indicators=_jsonl(gold_dir / "key_indicators.jsonl"),
        sha256=_digest(shared_dir),
    )
    validate(gold)
    return gold


def validate(gold: Gold) -> None:
    docs = set(gold.metadata)
    for doc, fields in gold.metadata.items():
        missing = [f for f in METADATA_FIELDS + ("body_starts", "body_ends") if f not in fields]
        if missing:
            raise GoldError(f"metadata.json: {doc} lacks {missing}")
        if not fields["body_starts"] or not fields["body_ends"]:
            raise GoldError(f"metadata.json: {doc} has an empty body_starts/body_ends")
        if any(m in fields["body_starts"] or m in fields["body_ends"] for m in gold.chrome_markers):
            raise GoldError(f"metadata.json: {doc}: a chrome marker occurs inside body_starts/ends")
    for name, table in (("outline.json", gold.outline), ("metrics.jsonl", gold.metrics)):
        if set(table) - docs:
            raise GoldError(f"{name}: documents {sorted(set(table) - docs)} are not in metadata.json")
    for doc, rows in gold.metrics.items():
        for row in rows:
            if not METRIC_KEYS <= set(row):
                raise GoldError(f"metrics.jsonl: {doc} row {row.get('text')!r} lacks {sorted(METRIC_KEYS - set(row))}")
    for row in gold.key_indicators:
        if row["doc"] not in docs or not row.get("subject_keywords"):
            raise GoldError(f"key_indicators.jsonl: bad row {row}")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _by_doc(rows: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["doc"], []).append(row)
    return grouped


def _digest(shared_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted([*(shared_dir / "gold").glob("*"), *(shared_dir / "seeds").glob("*")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
