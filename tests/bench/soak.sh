#!/usr/bin/env bash
# The soak (issue 22): SOAK_SECONDS (default 600) of HTTP/1.1, h2c and TLS traffic, a reload
# every 10 s and a backend killed every minute; RSS and descriptors sampled every second must
# stay within 10% of minute 2's; switchyard must never die. Not in CI. See tests/bench/soak.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/switchyard ] || { echo "build/switchyard is missing: run make" >&2; exit 2; }
exec python3 tests/bench/soak.py "$@"
