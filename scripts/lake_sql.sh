#!/usr/bin/env bash
# make lake-sql: the DuckDB CLI (duckdb-cli, the lock's 1.5.5) on a lake, read-only, after the
# lines `python -m warehouse.analyst.lake_cli sql` prints (extensions installed from the wheels,
# ATTACH … (READ_ONLY), USE lake). LAKE names the lake (ducklake:postgres:<dsn>); unset, GOVETL_WAREHOUSE
# if it names one, else the lake of make lake-demo, whose PostgreSQL runs for the session.
set -euo pipefail
PY=${PY:-.venv/bin/python}
DIR=${LAKE_DEMO_DIR:-build/lake-demo}
LAKE=${LAKE:-${GOVETL_WAREHOUSE:-}}
. "$(dirname "$0")/lake_catalog.sh"
if [[ "$LAKE" != ducklake:* ]]; then
    if [ ! -d "$DIR/postgres/data" ]; then
        echo "no lake: name one with LAKE='ducklake:postgres:<dsn>', or run make lake-demo first" >&2
        exit 1
    fi
    trap stop_catalog EXIT
    start_catalog "$DIR/postgres"
    LAKE="ducklake:postgres:$LAKE_DSN"
fi
mkdir -p build
"$PY" -m warehouse.analyst.lake_cli sql "$LAKE" >build/lake-attach.sql
echo "$LAKE, read-only (build/lake-attach.sql attached it)"
"$(dirname "$PY")/duckdb" -init build/lake-attach.sql
