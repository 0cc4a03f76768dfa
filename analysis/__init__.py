"""Read-only analyses of the warehouse: `python -m analysis.report` draws the key indicators."""
