#!/usr/bin/env bash
# Churn under load (issue 25): wrk -c64 while the file source adds or removes an endpoint every
# 200 ms, beside the same run without churn, and a 1,000-endpoint SRV answer through dnsmasq
# timed from the answer to the live snapshot. See tests/bench/churn.py. Needs `make` first,
# wrk and dnsmasq (apt-get install wrk dnsmasq-base).
#   tests/bench/churn.sh            # CHURN_SECONDS=20 BASE_PORT=18800 by default
set -euo pipefail
cd "$(dirname "$0")/../.."
for bin in wrk dnsmasq; do
  command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] ||
    { echo "missing: $bin (apt-get install wrk dnsmasq-base)" >&2; exit 2; }
done
[ -x build/switchyard ] || { echo "build/switchyard is missing: run make" >&2; exit 2; }
exec python3 tests/bench/churn.py "$@"
