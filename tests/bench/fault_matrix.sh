#!/usr/bin/env bash
# The fault matrix (issue 22): backends killed, two of three killed, a black hole (SIGSTOP) and
# half the answers 503, at 64 and 256 connections, switchyard beside HAProxy and NGINX with
# the same retry and health policy. See tests/bench/fault_matrix.py for the cases and what is
# measured. Needs `make` first, and haproxy, nginx, wrk (apt-get install haproxy nginx-light wrk).
#   tests/bench/fault_matrix.sh [--cases "kill kill2 stop half503"] [--conns "64 256"]
#                               [--targets "haproxy nginx switchyard"] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
for bin in haproxy nginx wrk taskset; do
  command -v "$bin" >/dev/null || { echo "missing: $bin (apt-get install haproxy nginx-light wrk)" >&2; exit 2; }
done
[ -x build/switchyard ] || { echo "build/switchyard is missing: run make" >&2; exit 2; }
exec python3 tests/bench/fault_matrix.py "$@"
