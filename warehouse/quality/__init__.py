"""Quality: the data-quality checks that end every load, a run's and a rebuild's (`checks.py`),
each a SQL file in `sql/` with its thresholds, plus a unique-key check per declared table and a
check per CHECK constraint of the migrations (what verifies keys and CHECKs on a lake, which
holds neither); results go to `dq_results`. Import the module by name (this package imports
nothing).
"""
