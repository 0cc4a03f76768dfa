"""`python -m evaluation [--out FILE]`: score extraction against ../shared/gold, beside trafilatura."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evaluation.gold import GoldError, load_gold
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
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    print(f"\nwritten: {out}")
    if args.pin:
        pin_baseline(report["gold_sha256"])
    return 0


def pin_baseline(gold_sha256: str) -> None:
    """Record which gold the floors apply to; written atomically (temp file, then rename)."""
    path = PROJECT_ROOT / "tests" / "eval_baseline.json"
    baseline = json.loads(path.read_text(encoding="utf-8"))
    baseline["gold_sha256"] = gold_sha256
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(baseline, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(f"pinned gold {gold_sha256[:12]} in {path}")


if __name__ == "__main__":
    sys.exit(main())
