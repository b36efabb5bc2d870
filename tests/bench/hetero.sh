#!/usr/bin/env bash
# The balancing proof (issue 23): hetero_bench.sh cases a-e and failover_bench.sh FAULT=stop,
# switchyard beside HAProxy and NGINX, one table of ratios. See tests/bench/hetero.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
for bin in haproxy nginx wrk taskset; do
  command -v "$bin" >/dev/null || { echo "missing: $bin (apt-get install haproxy nginx-light wrk)" >&2; exit 2; }
done
[ -x build/switchyard ] || { echo "build/switchyard is missing: run make" >&2; exit 2; }
exec python3 tests/bench/hetero.py "$@"
