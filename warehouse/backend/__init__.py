"""Backend: opening the warehouse and the engines behind it. A DuckDB file or a DuckLake on a
PostgreSQL catalog (`connect.py`: locks, snapshots, the storage format; `lake.py`), one
transaction around a unit of work (`tx.py`), Python values staged as Arrow for set-based SQL
(`staging.py`), the exceptions every stage raises (`errors.py`), and the file's own health: a
damaged file found when a run starts and rebuilt from the raw archive (`rebuild.py`), a file
written by DuckDB 2.0 carried over (`upgrade.py`). The other stages stand on these modules;
import them by name (this package imports nothing).
"""
