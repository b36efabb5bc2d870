#!/usr/bin/env bash
# Runs ../shared/bench/proxy_bench.sh with switchyard plugged in as the candidate, side by side
# with HAProxy and NGINX (installs them, and wrk, if missing). Extra arguments go to the
# harness, e.g.: tests/bench/proxy_vs_peers.sh -r 5 -d 8s
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared}
missing=""
for p in wrk haproxy nginx-light; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; }
make --no-print-directory build >/dev/null
CANDIDATE_NAME=switchyard \
CANDIDATE_CMD="$PWD/build/switchyard --config {config}" \
CANDIDATE_CONFIG_TEMPLATE="$SHARED/bench/switchyard-rr.yaml.tpl" \
CANDIDATE_VARS='strategy=round_robin' \
  "$SHARED/bench/proxy_bench.sh" "$@"
