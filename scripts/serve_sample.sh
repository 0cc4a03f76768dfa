# Sourced by scripts/demo.sh and scripts/lake_demo.sh: serve_sample serves the bundled sample
# site on a loopback port in the background, exports SAMPLE_SITE_URL (what sources.yaml reads)
# and stops the server when the calling script exits. Needs PY (the venv's python).
serve_sample() {
    mkdir -p build
    local url_file
    url_file=$(mktemp)
    : >build/sample-site.log
    # The same port on every run, so a second demo finds the URLs it already knows (the
    # warehouse keeps the URLs it saw); any free port when that one is taken.
    start_site() {
        "$PY" -m sample_site serve --port "$1" >"$url_file" 2>>build/sample-site.log &
        sample_server=$!
        for _ in $(seq 1 100); do
            [ -s "$url_file" ] && return 0
            kill -0 "$sample_server" 2>/dev/null || return 1
            sleep 0.1
        done
        return 1
    }
    start_site "${SAMPLE_SITE_PORT:-8765}" || start_site 0
    SAMPLE_SITE_URL=$(head -n1 "$url_file")
    export SAMPLE_SITE_URL
    rm -f "$url_file"
    echo "sample site: $SAMPLE_SITE_URL (requests logged in build/sample-site.log)"
}

stop_sample() {
    [ -n "${sample_server:-}" ] && { kill "$sample_server" 2>/dev/null; wait "$sample_server" 2>/dev/null; } || true
}
