"""Prefect flows: the nightly ETL and the archive reprocessing.

Process default for these offline, unattended runs (set the variable to override):
telemetry off, which also silences the temporary server's heartbeat tracebacks
("database is locked").
"""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
