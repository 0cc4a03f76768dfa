# Sourced by scripts/lake_demo.sh and scripts/lake_sql.sh: start_catalog DIR starts the private
# PostgreSQL of make lake-demo (tests/postgres.py; data, socket and log in DIR) unless it is
# already running, sets LAKE_DSN to its database's libpq DSN, and stops it when the calling
# script exits if it started it. Needs PY (the venv's python).
start_catalog() {
    local dir=$1
    if LAKE_DSN=$("$PY" -m tests.postgres start "$dir" 2>/dev/null); then
        catalog_dir=$dir
    else  # running already (another lake-demo or lake-sql session): leave it running
        LAKE_DSN=$("$PY" -m tests.postgres dsn "$dir")
    fi
}

stop_catalog() {
    [ -n "${catalog_dir:-}" ] && "$PY" -m tests.postgres stop "$catalog_dir" || true
}
