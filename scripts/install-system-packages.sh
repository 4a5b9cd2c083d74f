#!/usr/bin/env bash
# System packages the test suite's real components need: a PostgreSQL server for the event-store tests.
# Installs only what is missing, through the machine's package manager; prints what it does.
set -euo pipefail

have_postgres() {
    command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if have_postgres; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL server binaries are missing: install PostgreSQL (e.g. 'apt-get install postgresql') for the event-store tests" >&2
    exit 0
fi
echo "installing PostgreSQL for the event-store tests (apt-get install postgresql)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
