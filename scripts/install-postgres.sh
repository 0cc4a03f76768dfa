#!/usr/bin/env bash
# Install what the DuckLake backend's tests and `make lake-demo` need beyond the venv:
# Debian's PostgreSQL server (tests/postgres.py starts a private one; the machine's own
# cluster and service are never used). Installs with apt-get only when missing and we are
# root; otherwise says what to install and exits 0 (the tests then fail or skip, as
# GOVETL_TEST_POSTGRES says).
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
    echo "install-postgres: PostgreSQL server present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-postgres: missing; install with: sudo apt-get install -y postgresql"
    exit 0
fi
echo "install-postgres: installing postgresql"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
# The package starts the machine's own cluster; the tests never use it, and it need not run.
if command -v pg_ctlcluster >/dev/null 2>&1; then
    for cluster in /etc/postgresql/*/main; do
        [ -d "$cluster" ] && pg_ctlcluster "$(basename "$(dirname "$cluster")")" main stop 2>/dev/null || true
    done
fi
