#!/usr/bin/env bash
# Issue 24's figures: learned resource weights and predictive geography beside the static rules
# and HAProxy leastconn, one run. See tests/bench/adaptive.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
for bin in haproxy wrk; do
  command -v "$bin" >/dev/null || { echo "missing: $bin (apt-get install haproxy wrk)" >&2; exit 2; }
done
[ -x build/switchyard ] || { echo "build/switchyard is missing: run make" >&2; exit 2; }
exec python3 tests/bench/adaptive.py "$@"
