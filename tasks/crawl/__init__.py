"""Crawling: from a configured column to page bytes in the raw archive.

Owns discovery (`discover.py`: listing pages → report links), fetching (`fetch.py`, with
`robots.py` and `ratelimit.py` for politeness), decoding (`encoding.py`), the raw archive
(`archive/`: a SQLite file beside the warehouse, or a PostgreSQL schema) and the run lock
(`runlock.py`).
It must not import Prefect, the warehouse or the flows (tests/test_layout.py checks):
it never extracts report content and never writes a row; it may use the extractor's
text helpers (`tasks.extract.text`) to read link texts.
"""
