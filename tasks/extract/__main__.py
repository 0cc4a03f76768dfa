"""`python -m tasks.extract PAGE.html|URL`: the whole extraction of one page, as JSON.

For whoever adds a new site:
    python -m tasks.extract PAGE.html            # a saved page (its charset detected)
    python -m tasks.extract http://host/art.html # fetched politely, robots.txt obeyed
prints {"report": {...}, "sections": [...], "metrics": [...], "ranks": [...], "attachments": [...],
"warnings": [...], "key": {...}, "nightly": "..."} with the warehouse's column names: the key the
report would be stored under (its 索引号, else its CMS document id or URL), and what the
nightly run would do with the page (load it, or reject it and why).

The command line, not the library: the one module of tasks/extract that may reach the
crawler (to decode a file as a download is decoded, and to fetch a URL).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tasks.crawl.encoding import decode_html
from tasks.extract import extract_page
from tasks.pages import looks_like_html, not_a_report
from tasks.records import Source


def _read_page(target: str, source: Source | None) -> tuple[str, str | None]:
    """Decoded HTML and URL of a file path or an http(s) URL."""
    if target.startswith(("http://", "https://")):
        from tasks.crawl.fetch import Fetcher
        from tasks.records import FetchOutcome
        from tasks.sources import parse_source

        source = source or parse_source({"name": "cli", "region": "-", "listing_urls": [target]})
        with Fetcher(source) as fetcher:
            result = fetcher.fetch(target)
        if result.outcome is not FetchOutcome.FETCHED or result.body is None:
            raise SystemExit(f"could not fetch {target}: {result.outcome}: {result.reason}")
        return decode_html(result.body, result.content_type).text, result.final_url or target
    data = Path(target).read_bytes()
    return decode_html(data, None).text, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.extract", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("page", help="a saved HTML file or an http(s) URL")
    parser.add_argument("--sources", help="sources.yaml, to use a source's selectors and region")
    parser.add_argument("--source", help="name of the source in --sources")
    parser.add_argument("--url", help="where a saved page came from (keys a page that states no 索引号)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    source = None
    if args.source:
        from tasks.sources import load_sources

        source = load_sources(args.sources or "sources.yaml", only=[args.source])[0]
    html, url = _read_page(args.page, source)
    url = url or args.url
    extraction = extract_page(html, url, source)
    out = extraction.to_dict()
    report = extraction.report
    out["key"] = {"key": report.index_no, "kind": report.key_kind}
    reason = "not_html: served as HTML, but the body holds no HTML markup" if not looks_like_html(html) \
        else not_a_report(extraction)  # fmt: skip
    out["nightly"] = f"rejected: {reason}" if reason else f"loaded as a report keyed by its {report.key_kind}"
    json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
