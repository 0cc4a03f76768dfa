"""Prefect flows: the nightly ETL and the archive reprocessing.

Process defaults for these offline, unattended runs (set the variables to override):
telemetry off, which also silences the temporary server's heartbeat tracebacks
("database is locked"); and Arrow on the system allocator, which hands the memory of
each staged batch back instead of caching it for the rest of the run (read when pyarrow
is first imported, hence here).
"""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
