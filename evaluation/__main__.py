"""`python -m evaluation [--out FILE]`: score extraction on the seeds and the real pages, beside peers.

Two tables: the five seed reports against ../shared/gold (beside trafilatura), and the
real pages of ../shared/real_pages against evaluation/real_pages/ (beside trafilatura
and GNE on body, title and publish date).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evaluation.cells import CellScore, cells_available, evaluate_cells
from evaluation.gold import GoldError, load_gold
from evaluation.real_gold import real_gold_available
from evaluation.real_run import evaluate_real
from evaluation.run import evaluate
from tasks.settings import PROJECT_ROOT


def format_table(report: dict) -> str:
    rows = [f"{'document':<22} {'meta':>5} {'body':>5} {'outline F1':>10} {'metrics P':>9} {'metrics R':>9} "
            f"{'ranks P/R':>10} {'trafilatura body':>16}"]  # fmt: skip
    trafilatura_docs = report.get("trafilatura", {}).get("documents", {})
    for doc, scores in sorted(report["documents"].items()):
        meta = sum(scores["metadata"].values())
        body = "ok" if all(scores["body"][k] for k in ("starts", "ends", "no_chrome")) else "FAIL"
        t_body = trafilatura_docs.get(doc)
        t_text = "-" if t_body is None else _body_flags(t_body)
        rows.append(
            f"{doc:<22} {meta:>2}/{len(scores['metadata']):<2} {body:>5} {scores['outline']['f1']:>10.3f} "
            f"{scores['metrics']['precision']:>9.3f} {scores['metrics']['recall']:>9.3f} "
            f"{scores['ranks']['precision']:>4.2f}/{scores['ranks']['recall']:<4.2f} {t_text:>16}"
        )
    m, o, k = report["metrics"], report["outline"], report["key_indicators"]
    rows += [
        "",
        f"metadata accuracy  {report['metadata_accuracy']['all']:.3f}  "
        + " ".join(f"{f}={v:.2f}" for f, v in report["metadata_accuracy"].items() if f != "all"),
        f"body               {report['body_passed']}/{report['documents_scored']} pass (starts, ends, no chrome)",
        f"outline            P={o['precision']:.3f} R={o['recall']:.3f} F1={o['f1']:.3f} (levels 1-3)",
        f"metrics            P={m['precision']:.3f} R={m['recall']:.3f} (tp={m['tp']} fp={m['fp']} fn={m['fn']})",
        f"ranks              P={report['ranks']['precision']:.3f} R={report['ranks']['recall']:.3f}",
        f"key indicators     {k['found']}/{k['total']}",
        f"time               ours {report['ours']['seconds']:.3f}s for {report['ours']['pages']} pages "
        "(metadata + body + outline + metrics)",
    ]
    if "trafilatura" in report:
        t = report["trafilatura"]
        rows.append(f"trafilatura {t['version']:<6} body {t['body_passed']}/{report['documents_scored']} pass, "
                    f"{t['seconds']:.3f}s (main text only)")  # fmt: skip
    return "\n".join(rows)


def format_real_table(report: dict) -> str:
    """Per page: metadata, body, outline, items, metrics; then totals, ours beside the peers."""
    rows = [f"{'real page':<10} {'meta':>5} {'body':>6} {'L1 F1':>6} {'L2 F1':>6} {'items':>6} {'met R':>6} "
            f"{'met P':>6} {'subj':>6}  trafilatura/gne body"]  # fmt: skip
    peers = report.get("peers", {})
    for doc, s in sorted(report["documents"].items()):
        meta = sum(s["metadata"].values())
        body = "ok" if s["body"]["ok"] else _body_flags(s["body"])
        m = s["metrics"]
        subj = f"{m['subject_right']}/{m['subject_total']}"
        peer = "/".join("ok" if p["documents"][doc]["body"] else "-" for p in peers.values()) or "-"
        rows.append(f"{doc:<10} {meta:>2}/{len(s['metadata']):<2} {body:>6} {s['outline_1']['f1']:>6.2f} "
                    f"{s['outline_2']['f1']:>6.2f} {s['items']['f1']:>6.2f} {m['recall']['recall']:>6.2f} "
                    f"{m['precision']['precision']:>6.2f} {subj:>6}  {peer}")  # fmt: skip
    t = report["totals"]
    n = t["documents"]
    rows += [
        "",
        f"pages              {n} articles, {len(report['listings'])} listings",
        f"metadata accuracy  {t['metadata_accuracy']:.3f}  "
        + " ".join(f"{f}={v:.2f}" for f, v in t["metadata_fields"].items()),
        f"outline            level 1 F1={t['outline_1']['f1']:.3f} (P={t['outline_1']['precision']:.3f} "
        f"R={t['outline_1']['recall']:.3f}), level 2 F1={t['outline_2']['f1']:.3f} "
        f"(P={t['outline_2']['precision']:.3f} R={t['outline_2']['recall']:.3f})",
        f"一是 items          F1={t['items']['f1']:.3f} (P={t['items']['precision']:.3f} R={t['items']['recall']:.3f})",
        f"metrics            R={t['metrics_recall']['recall']:.3f} ({t['metrics_recall']['tp']}/"
        f"{t['metrics_recall']['tp'] + t['metrics_recall']['fn']} gold)  P={t['metrics_precision']['precision']:.3f} "
        f"({t['metrics_precision']['fp']} wrong of {t['metrics_precision']['tp'] + t['metrics_precision']['fp']} judged)",
        f"subjects           {t['subjects']['share']:.3f} name the thing counted "
        f"({t['subjects']['right']}/{t['subjects']['judged']} found gold metrics)",
        f"kinds              {t['kinds']['share']:.3f} of the found gold metrics have the gold's kind "
        f"(level, amount, rate, share, part, cumulative, change, removal, target)",
        "",
        f"{'':<19}{'body right':>11} {'chrome pages':>13} {'title right':>12} {'date right':>11} {'seconds':>8}",
        f"{'ours':<19}{t['body_passed']:>7}/{n:<3} {t['chrome_pages']:>13} {t['title_right']:>8}/{n:<3} "
        f"{t['date_right']:>7}/{n:<3} {report['ours']['seconds']:>8.3f}",
    ]
    for name, p in peers.items():
        rows.append(f"{name + ' ' + p['version']:<19}{p['body_passed']:>7}/{n:<3} {p['chrome_pages']:>13} "
                    f"{p['title_right']:>8}/{n:<3} {p['date_right']:>7}/{n:<3} {p['seconds']:>8.3f}")  # fmt: skip
    for doc, listing in sorted(report["listings"].items()):
        a = listing["articles"]
        rows.append(f"listing {doc:<10} articles R={a['recall']:.2f} P={a['precision']:.2f} "
                    f"({a['tp']}/{a['tp'] + a['fn']}), next pages {len(listing['next_pages'])}/{listing['next_pages_gold']}")
    return "\n".join(rows)


def format_cells(cells: CellScore) -> str:
    """The analyst's answer: indicator_by_region_year against the hand-checked cells."""
    banned = [t for t in cells.traps_shown if t.get("trap") in BANNED_TRAPS]
    rows = [f"analyst cells      {cells.share:.3f} right ({cells.right}/{cells.total} cells of indicator_by_region_year, "
            f"from the seeds and the real texts)",
            f"traps shown        {len(cells.traps_shown)} (a subset, cumulative count or removal shown: {len(banned)})",
            f"ambiguous cells    {cells.ambiguous_cells} of {cells.view_cells} in the view hold figures that disagree"]  # fmt: skip
    rows += [f"  wrong: {w['cell']} shows {w['shown'][0] if w['shown'] else None}" for w in cells.wrong]
    rows += [f"  trap:  {t['region']} {t['year']} {t['indicator']} shows {t['shown']} ({t['trap']}: {t['note']})"
             for t in cells.traps_shown]  # fmt: skip
    return "\n".join(rows)


BANNED_TRAPS = ("subset", "cumulative", "removal")  # what a cell must never show as its value


def _body_flags(body: dict) -> str:
    flags = [name for name in ("starts", "ends", "no_chrome") if not body[name]]
    return "ok" if not flags else "no " + ",".join(f.replace("no_chrome", "clean") for f in flags)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__)
    parser.add_argument("--out", default=str(PROJECT_ROOT / "build" / "eval" / "report.json"))
    parser.add_argument("--no-trafilatura", action="store_true", help="skip the comparison")
    parser.add_argument("--pin", action="store_true",
                        help="record the current gold's hash in tests/eval_baseline.json (after checking a gold change)")
    args = parser.parse_args(argv)
    try:
        gold = load_gold()
    except GoldError as exc:
        print(f"evaluation: {exc}", file=sys.stderr)
        return 2
    report = evaluate(gold, with_trafilatura=not args.no_trafilatura)
    print(format_table(report))
    if real_gold_available():
        report["real_pages"] = evaluate_real(with_peers=not args.no_trafilatura)
        print("\n" + format_real_table(report["real_pages"]))
    else:
        print("\nreal pages: ../shared/real_pages not beside the repository; not scored")
    if cells_available():
        cells = evaluate_cells()
        report["analyst_cells"] = cells.as_dict()
        print("\n" + format_cells(cells))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    print(f"\nwritten: {out}")
    if args.pin:
        pin_baseline(report["gold_sha256"], report.get("real_pages", {}).get("gold_sha256"),
                     report.get("analyst_cells", {}).get("gold_sha256"))
    return 0


def pin_baseline(gold_sha256: str, real_sha256: str | None, cells_sha256: str | None = None) -> None:
    """Record which gold the floors apply to; written atomically (temp file, then rename)."""
    path = PROJECT_ROOT / "tests" / "eval_baseline.json"
    baseline = json.loads(path.read_text(encoding="utf-8"))
    baseline["gold_sha256"] = gold_sha256
    if real_sha256:
        baseline["real_gold_sha256"] = real_sha256
    if cells_sha256:
        baseline["cells_gold_sha256"] = cells_sha256
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(baseline, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(f"pinned gold {gold_sha256[:12]} in {path}")


if __name__ == "__main__":
    sys.exit(main())
