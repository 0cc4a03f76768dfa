"""Analyst: the command lines analysts and operators run against a warehouse, read-only. The
example queries `make demo` prints (`examples.py`), the Parquet export and the indicator
table's Excel workbook (`export.py`, `make export`), and a lake's ATTACH lines and snapshots
(`lake_cli.py`). Each is `python -m warehouse.analyst.<module>`; nothing else in the warehouse
imports them.
"""
