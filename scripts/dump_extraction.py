"""Dump the extraction of every page we can reach offline, to see what a change changes.

    python scripts/dump_extraction.py --out build/dump/after.jsonl [--bench-pages 2500]
    python scripts/dump_extraction.py --compare build/dump/before.jsonl build/dump/after.jsonl

The pages: every article of the bundled sample site, a synthetic bench corpus of
`--bench-pages` reports in the same templates, and the real pages of
../shared/real_pages (when it is beside the repository). One JSON line per page:
{"page": id, "extraction": Extraction.to_dict()}. `--compare` prints how many pages
differ and, for the first few, which parts (report fields, sections, metrics …).
A refactoring must show 0 differences; a rule change shows exactly the pages it meant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.corpus import build_bench_corpus  # noqa: E402
from evaluation.real import real_documents  # noqa: E402
from sample_site.content import load_sample_sites  # noqa: E402
from sample_site.render import render_article  # noqa: E402
from tasks.crawl.encoding import decode_html  # noqa: E402
from tasks.extract import extract_page  # noqa: E402
from tasks.sources import load_sources  # noqa: E402
from tasks.settings import SOURCES_FILE  # noqa: E402

BASE_URL = "http://sample.test"


def pages(bench_pages: int) -> Iterator[tuple[str, str, str | None, str | None]]:
    """(page id, decoded html, url, source name) of every page to dump."""
    for site in load_sample_sites():
        for article in site.articles:
            html = decode_html(render_article(site, article), site.content_type).text
            yield f"sample:{article.path}", html, BASE_URL + article.path, site.key
    if bench_pages:
        bench = build_bench_corpus(bench_pages)
        for site in bench.sites:
            for article in site.articles:
                resource = bench.corpus[article.path]
                html = decode_html(resource.body, resource.content_type).text
                yield f"bench:{article.path}", html, BASE_URL + article.path, site.key
    for doc in real_documents():
        yield f"real:{doc.doc_id}", doc.html, doc.url, None


def dump(out: Path, bench_pages: int) -> int:
    sources = {s.name: s for s in load_sources(SOURCES_FILE)}
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with out.open("w", encoding="utf-8") as handle:
        for page_id, html, url, source in pages(bench_pages):
            extraction = extract_page(html, url, sources.get(source) if source else None)
            handle.write(json.dumps({"page": page_id, "extraction": extraction.to_dict()}, ensure_ascii=False) + "\n")
            count += 1
    print(f"{count} pages dumped to {out}")
    return 0


def compare(before: Path, after: Path, show: int = 10) -> int:
    old, new = _read(before), _read(after)
    changed = [page for page in new if page in old and old[page] != new[page]]
    print(f"{len(new)} pages: {len(changed)} differ, {len(set(new) - set(old))} new, "
          f"{len(set(old) - set(new))} gone")  # fmt: skip
    for page in changed[:show]:
        parts = [key for key in new[page] if old[page].get(key) != new[page].get(key)]
        fields = [k for k in new[page]["report"] if old[page]["report"].get(k) != new[page]["report"][k]]
        print(f"  {page}: {', '.join(parts)}" + (f" (report: {', '.join(fields)})" if fields else ""))
    return 1 if changed else 0


def _read(path: Path) -> dict[str, dict]:
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return {row["page"]: row["extraction"] for row in rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "dump" / "extraction.jsonl")
    parser.add_argument("--bench-pages", type=int, default=2500)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    return dump(args.out, args.bench_pages)


if __name__ == "__main__":
    sys.exit(main())
