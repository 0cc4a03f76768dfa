#!/usr/bin/env bash
# make demo: serve the bundled sample site on a free loopback port, run the nightly flow
# against it into $WAREHOUSE, then show what landed. The server stops when this script does.
set -euo pipefail
PY=${PY:-.venv/bin/python}
WAREHOUSE=${WAREHOUSE:-data/warehouse.duckdb}
SOURCES=${SOURCES:-sources.yaml}
mkdir -p build
url_file=$(mktemp)
"$PY" -m sample_site serve --port 0 >"$url_file" 2>build/sample-site.log &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$url_file"' EXIT
for _ in $(seq 1 100); do [ -s "$url_file" ] && break; sleep 0.1; done
export SAMPLE_SITE_URL=$(head -n1 "$url_file")
echo "sample site: $SAMPLE_SITE_URL (requests logged in build/sample-site.log)"
"$PY" -m flows.nightly --sources "$SOURCES" --warehouse "$WAREHOUSE"
"$PY" -m warehouse.examples --warehouse "$WAREHOUSE" --only dibao_standard_by_region
