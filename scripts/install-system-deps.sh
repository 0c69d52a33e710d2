#!/usr/bin/env bash
# Install the system packages the test suite needs, only those missing (Debian 12).
# Used by .ci/run and ./dev test; safe to run again: it does nothing when all are present.
#   redis-server        session store tests
#   chromium(+driver)   browser tests of the example apps
#   nginx               the reverse-proxy tests (TLS termination, a path prefix)
#   maven               fetches the Keycloak distribution (kc_core/testing/server.py)
#   a Java runtime      runs Keycloak (JDK 17 is normally there already)
set -euo pipefail

# package:command pairs; a package counts as present when its command is on PATH.
wanted=(redis-server:redis-server chromium:chromium chromium-driver:chromedriver maven:mvn
    nginx:nginx)
command -v java >/dev/null 2>&1 || wanted+=(openjdk-17-jre-headless:java)

missing=()
for pair in "${wanted[@]}"; do
    # nginx lives in /usr/sbin, which a non-root PATH may lack.
    command -v "${pair#*:}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair#*:}" ] \
        || missing+=("${pair%%:*}")
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-system-deps: all present"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: no apt-get here; please install: ${missing[*]}" >&2
    exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
