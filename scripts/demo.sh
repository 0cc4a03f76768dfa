#!/usr/bin/env bash
# make demo: serve the bundled sample site on a loopback port, run the nightly flow
# against it into $WAREHOUSE, then show what landed. The server stops when this script does.
set -euo pipefail
PY=${PY:-.venv/bin/python}
WAREHOUSE=${WAREHOUSE:-data/warehouse.duckdb}
SOURCES=${SOURCES:-sources.yaml}
mkdir -p build
url_file=$(mktemp)
# The same port on every run, so a second demo finds the URLs it already knows (the
# warehouse keeps the URLs it saw); any free port when that one is taken.
start_site() {
    "$PY" -m sample_site serve --port "$1" >"$url_file" 2>>build/sample-site.log &
    server=$!
    for _ in $(seq 1 100); do
        [ -s "$url_file" ] && return 0
        kill -0 "$server" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
: >build/sample-site.log
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$url_file"' EXIT
start_site "${SAMPLE_SITE_PORT:-8765}" || start_site 0
export SAMPLE_SITE_URL=$(head -n1 "$url_file")
echo "sample site: $SAMPLE_SITE_URL (requests logged in build/sample-site.log)"
"$PY" -m flows.nightly --sources "$SOURCES" --warehouse "$WAREHOUSE"
"$PY" -m warehouse.examples --warehouse "$WAREHOUSE" --only dibao_standard_by_region
