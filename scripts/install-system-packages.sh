#!/usr/bin/env bash
# System packages the test suite's real components need: a PostgreSQL server for the event-store tests,
# Debian's chromium with its WebDriver for the dashboard's browser tests, and a Java 17 runtime for Spark.
# Installs only what is missing, through the machine's package manager; prints what it does.
set -euo pipefail

have_postgres() {
    command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

have() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/bin/$1" ]
}

missing=()
have_postgres || missing+=(postgresql)
have chromium || missing+=(chromium)
have chromedriver || missing+=(chromium-driver)
have java || missing+=(openjdk-17-jre-headless)

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing system packages: ${missing[*]}: install them (e.g. 'apt-get install ${missing[*]}') for the" \
         "event-store, browser and Spark tests" >&2
    exit 0
fi
echo "installing ${missing[*]} for the event-store, browser and Spark tests (apt-get install ${missing[*]})"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
