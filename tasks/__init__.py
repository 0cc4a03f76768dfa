"""The pipeline's stages, as packages that say what they hold.

- `crawl/`: from a site's column to bytes in the raw archive: discovery of report
  links, the polite fetcher (retries, robots.txt, per-host rate limit), decoding,
  the raw archive and the run lock. Network and disk, no extraction rules.
- `extract/`: from one page's HTML to records: body, metadata (the 索引号 is read in
  `extract/metadata.py`), outline, metrics (units normalised in `extract/metrics.py`),
  subjects, ranks. Pure functions over plain data; rules are data in config/.
- at the top, what wires them and what every stage shares: `steps.py` (the Prefect
  tasks), `pages.py` (an archived page → decoded → extracted → a PageRecord),
  `records.py`, `settings.py`, `sources.py`, `summary.py`.

Rows are written only by the top-level `warehouse/` package.
"""
