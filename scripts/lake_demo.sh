#!/usr/bin/env bash
# make lake-demo: the demo into a DuckLake (warehouse/backend/lake.py). A PostgreSQL of its own for
# the catalog (tests/postgres.py, data and log in $LAKE_DEMO_DIR/postgres, stopped at the end), the
# lake's Parquet files in $LAKE_DEMO_DIR/files, the raw archive in $LAKE_DEMO_DIR/archive; the
# sample site served on loopback; the nightly flow run twice, the second run writing nothing
# (its counts, and the lake's snapshots: none writes a data table); then an example query.
# A second `make lake-demo` finds the lake as the first left it, as `make demo` does its file.
set -euo pipefail
PY=${PY:-.venv/bin/python}
SOURCES=${SOURCES:-sources.yaml}
DIR=${LAKE_DEMO_DIR:-build/lake-demo}
. "$(dirname "$0")/serve_sample.sh"
. "$(dirname "$0")/lake_catalog.sh"
mkdir -p "$DIR"
trap 'stop_sample; stop_catalog' EXIT
start_catalog "$DIR/postgres"
export GOVETL_LAKE_DATA_PATH="$DIR/files" GOVETL_ARCHIVE="$DIR/archive"
LAKE="ducklake:postgres:$LAKE_DSN"
echo "lake: $LAKE (PostgreSQL in $DIR/postgres, files in $DIR/files)"
serve_sample

echo; echo "== run 1"
"$PY" -m flows.nightly --sources "$SOURCES" --warehouse "$LAKE"
before=$("$PY" -m warehouse.analyst.lake_cli snapshot "$LAKE")

echo; echo "== run 2: the same pages again"
"$PY" -m flows.nightly --sources "$SOURCES" --warehouse "$LAKE"
"$PY" -m warehouse.analyst.lake_cli changes "$LAKE" --since "$before"

"$PY" -m warehouse.analyst.examples --warehouse "$LAKE" --only dibao_standard_by_region
echo; echo "the DuckDB CLI on this lake, read-only: make lake-sql (it starts this PostgreSQL for the session)"
