"""Schema: what the warehouse is. Versioned migrations (`migrations/`, each applied once and
recorded with its sha256), the views, macros and seed tables re-applied whenever a file changes
(`views/`, `seeds/`), applied to a DuckDB file or derived for a lake by `migrate.py`; and each
table's write disposition and key, declared once (`tables.py`) for the writer, the checks and
the export. Import the modules by name (this package imports nothing).
"""
