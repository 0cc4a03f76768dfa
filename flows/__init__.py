"""Prefect flows: the nightly ETL and the archive reprocessing.

Telemetry is off by default for these offline, unattended runs; it also silences the
temporary server's heartbeat tracebacks ("database is locked"). Set the variable to
override.
"""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
