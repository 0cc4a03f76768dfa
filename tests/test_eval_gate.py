"""The extraction quality gate: scores must not fall under the floors.

Seeds (../shared/gold): metadata 100%, body 5/5, outline F1 1.00, metrics precision and
recall >= 0.98, key indicators >= 32 of 35. Real pages (../shared/real_pages against
evaluation/real_pages/): metadata >= 0.95, outline level 1 and level 2 F1 >= 0.93, 一是
items F1 >= 0.90, body right on at least as many pages as the better of trafilatura and
GNE and no chrome marker on any page, metric recall >= 0.93 and precision >= 0.95, the
subject naming the thing counted on >= 0.90 of the gold metrics found. Both golds are
pinned by hash in tests/eval_baseline.json, so a change of gold is a deliberate, visible
step (`python -m evaluation --pin`), never a silent shift of what the gate measures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.__main__ import BANNED_TRAPS
from evaluation.cells import cells_available, evaluate_cells
from evaluation.gold import gold_available, load_gold
from evaluation.real_gold import real_gold_available
from evaluation.real_run import evaluate_real
from evaluation.run import evaluate

BASELINE = json.loads((Path(__file__).parent / "eval_baseline.json").read_text(encoding="utf-8"))
EPSILON = 0.0005  # float noise, as trafilatura's eval gate allows

pytestmark = pytest.mark.skipif(not gold_available(), reason="../shared/gold is not beside the repository")


@pytest.fixture(scope="module")
def report() -> dict:
    return evaluate(load_gold(), with_trafilatura=False)


def test_gold_is_the_one_the_floors_were_set_on(report):
    assert report["gold_sha256"] == BASELINE["gold_sha256"], (
        "../shared/gold or the seeds changed: check the new gold, then re-pin with `python -m evaluation --pin`")


def test_metadata_is_exact_for_every_field_of_every_seed(report):
    wrong = {doc: [f for f, ok in s["metadata"].items() if not ok] for doc, s in report["documents"].items()}
    assert report["metadata_accuracy"]["all"] >= BASELINE["floors"]["metadata_accuracy"] - EPSILON, wrong


def test_every_body_starts_and_ends_right_without_chrome(report):
    failing = {doc: s["body"] for doc, s in report["documents"].items()
               if not all(s["body"][k] for k in ("starts", "ends", "no_chrome"))}  # fmt: skip
    assert report["body_passed"] >= BASELINE["floors"]["body_passed"], failing


def test_outline_matches_the_gold_outline(report):
    assert report["outline"]["f1"] >= BASELINE["floors"]["outline_f1"] - EPSILON, report["outline"]


def test_metrics_precision_and_recall(report):
    metrics = report["metrics"]
    assert metrics["precision"] >= BASELINE["floors"]["metrics_precision"] - EPSILON, metrics
    assert metrics["recall"] >= BASELINE["floors"]["metrics_recall"] - EPSILON, metrics


def test_key_indicators_carry_subject_and_year(report):
    keys = report["key_indicators"]
    assert keys["found"] >= BASELINE["floors"]["key_indicators"], keys["missed"]


# --- real pages ------------------------------------------------------------------------------------
needs_real = pytest.mark.skipif(not real_gold_available(), reason="../shared/real_pages is not beside the repository")
REAL = BASELINE["real_floors"]


@pytest.fixture(scope="module")
def real() -> dict:
    return evaluate_real(with_peers=True)


@needs_real
def test_real_gold_is_the_one_the_floors_were_set_on(real):
    assert real["gold_sha256"] == BASELINE["real_gold_sha256"], (
        "evaluation/real_pages or ../shared/real_pages changed: check the gold, then `python -m evaluation --pin`")


@needs_real
def test_real_pages_metadata(real):
    wrong = {doc: [f for f, ok in s["metadata"].items() if not ok] for doc, s in real["documents"].items()}
    assert real["totals"]["metadata_accuracy"] >= REAL["metadata_accuracy"] - EPSILON, {d: w for d, w in wrong.items() if w}


@needs_real
def test_real_pages_outline_levels_and_inline_items(real):
    totals = real["totals"]
    assert totals["outline_1"]["f1"] >= REAL["outline_f1"] - EPSILON, totals["outline_1"]
    assert totals["outline_2"]["f1"] >= REAL["outline_f1"] - EPSILON, totals["outline_2"]
    assert totals["items"]["f1"] >= REAL["items_f1"] - EPSILON, totals["items"]


@needs_real
def test_real_pages_body_beats_both_peers_and_never_keeps_chrome(real):
    totals, peers = real["totals"], real["peers"]
    best_peer = max(p["body_passed"] for p in peers.values())
    failing = {doc: s["body"] for doc, s in real["documents"].items() if not s["body"]["ok"]}
    assert totals["body_passed"] >= best_peer, failing
    assert totals["chrome_pages"] == 0, {doc: b["chrome_found"] for doc, b in failing.items() if b["chrome_found"]}


@needs_real
def test_real_pages_metrics_and_subjects(real):
    totals = real["totals"]
    assert totals["metrics_recall"]["recall"] >= REAL["metrics_recall"] - EPSILON, totals["metrics_recall"]
    assert totals["metrics_precision"]["precision"] >= REAL["metrics_precision"] - EPSILON, totals["metrics_precision"]
    assert totals["subjects"]["share"] >= REAL["subjects"] - EPSILON, totals["subjects"]


# --- the analyst's answer --------------------------------------------------------------------------
@pytest.mark.skipif(not cells_available(), reason="../shared/real_pages is not beside the repository")
def test_analyst_cells_are_right_and_never_show_a_subset_cumulative_count_or_removal():
    cells = evaluate_cells()
    assert cells.gold_sha256 == BASELINE["cells_gold_sha256"], (
        "evaluation/analyst_cells.jsonl or real_pages/regions.tsv changed: check the gold, then `python -m evaluation --pin`")
    assert cells.share >= BASELINE["cells_floor"] - EPSILON, cells.wrong
    banned = [t for t in cells.traps_shown if t.get("trap") in BANNED_TRAPS]
    assert banned == []
