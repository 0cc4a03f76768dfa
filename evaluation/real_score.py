"""Score one extraction against the gold of a real page (evaluation/real_pages/README.md).

Strings compare after NFKC and whitespace removal (`norm`), as for the seeds.
- metadata: exact per field; `null` in the gold means the page does not give it, and
  the extractor must say so too.
- body: starts within the first BODY_SLACK characters of the extracted body, ends within
  its last BODY_SLACK, and holds none of the page's chrome strings (nor the seeds' list).
- outline: (level, label, heading) multisets, levels 1 and 2 apart; items: the label and
  the start of the heading (see score_items).
- metrics: recall over the gold rows on (value_norm, unit_norm). Precision over the
  extracted rows the gold judges: on a page whose gold lists every quantity
  (metrics_complete), every row whose sentence shows its digits; elsewhere the rows
  that stand on a gold quantity or a gold non-metric (same digits, the gold's context
  before them in the sentence). The subject score counts matched gold rows whose
  extracted subject contains the gold subject.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from evaluation.real_gold import META_FIELDS, ArticleGold
from evaluation.score import PRF, countable, multiset_prf, norm, value_digits
from tasks.records import Extraction, Metric, Report

BODY_SLACK = 30  # characters of extra text tolerated before the start and after the end
ITEM_PREFIX = 8
MIN_ITEM_PREFIX = 4
CONTEXT_TAIL = 4  # characters of the gold context that must stand right before a judged row
CN_LABEL = re.compile("[一二三四五六七八九十]+")


@dataclass
class BodyScore:
    starts: bool
    ends: bool
    no_chrome: bool
    chrome_found: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.starts and self.ends and self.no_chrome


@dataclass
class MetricScore:
    recall: PRF  # tp/fn over gold rows
    precision: PRF  # tp/fp over judged extracted rows
    subject_right: int = 0
    subject_total: int = 0
    kind_right: int = 0  # matched gold rows whose kind (level, amount, rate …) is the gold's
    misses: list[str] = field(default_factory=list)  # gold rows not found
    wrong: list[str] = field(default_factory=list)  # judged extracted rows that are wrong
    bad_subjects: list[str] = field(default_factory=list)


def score_metadata(extraction: Extraction, gold: ArticleGold) -> dict[str, bool]:
    report = extraction.report
    return {f: _same(stated(report, f), gold.metadata.get(f)) for f in META_FIELDS}


def stated(report: Report, field: str) -> object:
    """A field as the page states it: index_no only when the report is keyed by a 索引号
    (a report without one is keyed by its document id or URL, which the page does not state)."""
    if field == "index_no" and report.key_kind not in (None, "index_no"):
        return None
    return getattr(report, field)


def _same(got: object, expected: object) -> bool:
    if expected is None or got is None:
        return expected is None and got is None
    return norm(got) == norm(expected)


def score_body(body_text: str | None, gold: ArticleGold, global_chrome: list[str] = ()) -> BodyScore:  # type: ignore[assignment]
    body = norm(body_text or "")
    starts, ends = norm(gold.body_starts), norm(gold.body_ends)
    at = body.find(starts)
    end = body.rfind(ends)
    chrome = [m for m in [*gold.chrome, *global_chrome] if norm(m) and norm(m) in body and not _in_gold_body(m, gold)]
    return BodyScore(starts=0 <= at <= BODY_SLACK, ends=end >= 0 and len(body) - (end + len(ends)) <= BODY_SLACK,
                     no_chrome=not chrome, chrome_found=chrome)  # fmt: skip


def _in_gold_body(marker: str, gold: ArticleGold) -> bool:
    """A global chrome word the document itself uses (索引号 quoted in a disclosure report)."""
    return norm(marker) in norm(gold.body_starts + gold.body_ends)


def score_outline(extraction: Extraction, gold: ArticleGold, level: int) -> PRF:
    got = Counter((norm(s.label), norm(s.heading)) for s in extraction.sections if s.level == level)
    expected = Counter((norm(g["label"]), norm(g["heading"])) for g in gold.outline if g["level"] == level)
    return multiset_prf(got, expected)


def score_items(extraction: Extraction, gold: ArticleGold) -> PRF:
    """Inline 一是… items: the sections below level 3 numbered with a Chinese numeral (a
    numbered (1) item carries digits, a ① item a circled digit). An item matches a gold
    item with its label whose heading starts the same: the first ITEM_PREFIX characters,
    or all of the shorter heading (at least MIN_ITEM_PREFIX), since where a heading ends
    (a comma or the full stop) is a matter of taste."""
    got = [(norm(s.label), norm(s.heading) or "") for s in extraction.sections
           if s.level >= 4 and s.label and CN_LABEL.fullmatch(s.label)]  # fmt: skip
    expected = [(norm(g["label"]), norm(g["heading"]) or "") for g in gold.items]
    score = PRF()
    for label, heading in got:
        match = next((e for e in expected if e[0] == label and _same_start(heading, e[1])), None)
        if match is None:
            score.fp += 1
        else:
            expected.remove(match)
            score.tp += 1
    score.fn = len(expected)
    return score


def _same_start(got: str, expected: str) -> bool:
    n = min(ITEM_PREFIX, len(got), len(expected))
    return n >= min(MIN_ITEM_PREFIX, len(expected)) and got[:n] == expected[:n]


def score_metrics(extraction: Extraction, gold: ArticleGold) -> MetricScore:
    rows = [m for m in extraction.metrics if countable(m)]
    key = lambda value, unit: (round(float(value), 4), unit)  # noqa: E731
    expected = Counter(key(g["value_norm"], g["unit_norm"]) for g in gold.metrics)
    got = Counter(key(m.value_norm, m.unit_norm) for m in rows)
    recall = multiset_prf(got, expected)
    score = MetricScore(recall=PRF(tp=recall.tp, fn=recall.fn), precision=PRF())
    unmatched = expected - got
    score.misses = [f"{g['context']}[{g['text']}]" for g in gold.metrics
                    if unmatched[key(g["value_norm"], g["unit_norm"])] > 0]  # fmt: skip
    _score_subjects(rows, gold, score, key)
    gold_keys = Counter(expected)
    for metric in rows:
        verdict = _judge(metric, gold, gold_keys, key)
        if verdict is True:
            score.precision.tp += 1
        elif verdict is False:
            score.precision.fp += 1
            score.wrong.append(f"{metric.text} ({metric.value_norm:g} {metric.unit_norm}) in {metric.sentence[:40]}")
    return score


def _score_subjects(rows: list[Metric], gold: ArticleGold, score: MetricScore, key) -> None:
    pool = list(rows)
    for g in gold.metrics:
        match = next((m for m in pool if key(m.value_norm, m.unit_norm) == key(g["value_norm"], g["unit_norm"])
                      and _stands_on(m, g)), None)  # fmt: skip
        if match is None:
            continue
        pool.remove(match)
        score.subject_total += 1
        score.kind_right += match.kind == g.get("kind")
        if norm(g["subject"]) and norm(g["subject"]) in norm(match.subject or ""):
            score.subject_right += 1
        else:
            score.bad_subjects.append(f"{g['text']}: {match.subject!r}, gold {g['subject']!r}")


def _judge(metric: Metric, gold: ArticleGold, gold_keys: Counter, key) -> bool | None:
    """True: a gold quantity, read right; False: wrong (a non-metric, or a gold quantity read
    wrong, or anything on a fully annotated page not in its gold); None: not judged."""
    for row in gold.not_metrics:
        if _stands_on(metric, row):
            return False
    standing = [g for g in gold.metrics if _stands_on(metric, g)]
    if standing:
        return any(key(metric.value_norm, metric.unit_norm) == key(g["value_norm"], g["unit_norm"]) for g in standing)
    if gold.metrics_complete:
        return gold_keys[key(metric.value_norm, metric.unit_norm)] > 0
    return None


def _stands_on(metric: Metric, row: dict) -> bool:
    """The extracted row is the gold row's quantity: same leading digits, and the gold
    context's last characters right before them in the sentence."""
    digits = re.sub(r"(?<=\d),(?=\d{3})", "", norm(row.get("text", "")))
    found = re.match(r"\d+(?:\.\d+)?", digits)
    if not found or found.group() != value_digits(metric.value):
        return False
    sentence = re.sub(r"(?<=\d),(?=\d{3})", "", norm(metric.sentence))
    anchor = norm(row.get("context", ""))[-CONTEXT_TAIL:] + found.group()
    return anchor in sentence


def same_date(got: object, expected: str | None) -> bool:
    """A peer's date (any format with Y-M-D) against the gold's YYYY-MM-DD."""
    if expected is None:
        return got is None or got == ""
    found = re.search(r"(\d{4})\D(\d{1,2})\D(\d{1,2})", str(got or ""))
    if found is None:
        return False
    return "%s-%02d-%02d" % (found.group(1), int(found.group(2)), int(found.group(3))) == expected
