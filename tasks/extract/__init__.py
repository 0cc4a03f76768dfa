"""Extraction: one page's HTML → a report, its sections, metrics and ranks.

Owns the page model (`page.py`), the body and its cleaning (`body.py`), metadata such as
the 索引号 (`metadata.py`), the outline (`outline.py`), metrics and their units
(`metrics.py`), subjects and indicators (`subjects.py`), ranks (`ranks.py`), text
helpers (`text.py`), the rule files of config/ (`vocab.py`), and `document.py`, which
runs them on one page. Pure functions over plain data: nothing here imports from
`tasks.crawl`, Prefect, an HTTP client or the warehouse (tests/test_layout.py checks);
the command line (`__main__.py`) is the one exception.

The hot modules may run compiled by mypyc (`compiled.py`): the build directory goes
first on this package's path only while it matches the sources.
"""

from tasks.extract.compiled import current_build

if (_build := current_build()) is not None:
    __path__.insert(0, str(_build))

from tasks.extract.document import EXTRACTOR_VERSION, content_hash, extract_page  # noqa: E402

__all__ = ["EXTRACTOR_VERSION", "content_hash", "extract_page"]
