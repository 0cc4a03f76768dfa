#!/usr/bin/env bash
# make demo: serve the bundled sample site on a loopback port, run the nightly flow
# against it into $WAREHOUSE, then show what landed. The server stops when this script does.
set -euo pipefail
PY=${PY:-.venv/bin/python}
WAREHOUSE=${WAREHOUSE:-data/warehouse.duckdb}
SOURCES=${SOURCES:-sources.yaml}
. "$(dirname "$0")/serve_sample.sh"
trap stop_sample EXIT
serve_sample
"$PY" -m flows.nightly --sources "$SOURCES" --warehouse "$WAREHOUSE"
"$PY" -m warehouse.analyst.examples --warehouse "$WAREHOUSE" --only dibao_standard_by_region
