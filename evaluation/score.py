"""Score extractions against gold, as ../shared/README.md and gold/metadata.json describe.

Strings compare after Unicode NFKC and whitespace removal. Outline: precision/recall/F1
of (level, label, heading) over levels 1-3 (what the gold annotates; deeper inline items
are extra structure, not errors). Metrics: multisets of (value_norm, unit_norm) per
document; precision counts only extracted rows whose sentence contains the digits of
their value (rows from Chinese numerals, 两个, are neither rewarded nor penalised).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import overload

from evaluation.gold import METADATA_FIELDS, Gold
from tasks.records import Extraction
from tasks.extract.vocab import indicators


# A string always normalises to a string (score_body tests it with `in`); only None gives None.
@overload
def norm(value: None) -> None: ...
@overload
def norm(value: str) -> str: ...
@overload
def norm(value: object) -> str | None: ...
def norm(value: object) -> str | None:
    if value is None:
        return None
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(value)))


@dataclass
class PRF:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, other: PRF) -> None:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn

    def as_dict(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": round(self.precision, 4),
                "recall": round(self.recall, 4), "f1": round(self.f1, 4)}  # fmt: skip


def multiset_prf(got: Counter, expected: Counter) -> PRF:
    tp = sum((got & expected).values())
    return PRF(tp=tp, fp=sum(got.values()) - tp, fn=sum(expected.values()) - tp)


# --- metadata and body --------------------------------------------------------------------------
def score_metadata(doc: str, extraction: Extraction, gold: Gold) -> dict[str, bool]:
    expected, report = gold.metadata[doc], extraction.report
    return {f: norm(getattr(report, f)) == norm(expected[f]) for f in METADATA_FIELDS}


def score_body(doc: str, body_text: str | None, gold: Gold) -> dict[str, bool | list[str]]:
    expected = gold.metadata[doc]
    body = norm(body_text or "") or ""
    chrome = [m for m in gold.chrome_markers if m in (body_text or "") or norm(m) in body]
    return {
        "starts": norm(expected["body_starts"]) in body[:200],
        "ends": norm(expected["body_ends"]) in body[-200:],
        "no_chrome": not chrome,
        "chrome_found": chrome,
    }


# --- outline, metrics, ranks ----------------------------------------------------------------------
def score_outline(doc: str, extraction: Extraction, gold: Gold) -> PRF:
    got = Counter((s.level, norm(s.label), norm(s.heading)) for s in extraction.sections if 1 <= s.level <= 3)
    expected = Counter((g["level"], norm(g["label"]), norm(g["heading"])) for g in gold.outline.get(doc, []))
    return multiset_prf(got, expected)


def value_digits(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else format(value, "f").rstrip("0").rstrip(".")


def countable(metric) -> bool:
    """Precision counts rows whose sentence shows the digits of their value."""
    sentence = re.sub(r"(?<=\d),(?=\d{3})", "", norm(metric.sentence) or "")
    return value_digits(metric.value) in sentence


def score_metrics(doc: str, extraction: Extraction, gold: Gold) -> PRF:
    expected = Counter((round(g["value_norm"], 4), g["unit_norm"]) for g in gold.metrics.get(doc, []))
    rows = [m for m in extraction.metrics if countable(m)]
    got = Counter((round(m.value_norm, 4), m.unit_norm) for m in rows)
    return multiset_prf(got, expected)


def score_ranks(doc: str, extraction: Extraction, gold: Gold) -> PRF:
    expected = Counter((g["rank"], g["scope"]) for g in gold.ranks.get(doc, []))
    return multiset_prf(Counter((r.rank, r.scope) for r in extraction.ranks), expected)


@dataclass
class KeyResult:
    indicator: str
    doc: str
    found: bool
    candidates: list[tuple] = field(default_factory=list)


def score_key_indicators(extractions: dict[str, Extraction], gold: Gold) -> list[KeyResult]:
    """A key fact is found when a metric with its value and unit names it (subject or
    indicator) and carries the right year."""
    names = {row["code"]: row["name_zh"] for row in indicators()}
    results = []
    for key in gold.key_indicators:
        metrics = extractions[key["doc"]].metrics if key["doc"] in extractions else []
        same = [m for m in metrics if abs(m.value_norm - key["value_norm"]) < 1e-6 and m.unit_norm == key["unit_norm"]]
        found = any(
            m.year == key["year"]
            and any(w in (m.subject or "") or w in names.get(m.indicator or "", "") for w in key["subject_keywords"])
            for m in same
        )
        results.append(KeyResult(key["indicator"], key["doc"], found, [(m.subject, m.indicator, m.year) for m in same]))
    return results
