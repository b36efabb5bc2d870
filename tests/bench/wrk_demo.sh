#!/usr/bin/env bash
# wrk through switchyard to three demo backends on loopback; prints wrk's report and the
# non-2xx count from switchyard's own metrics. Usage: tests/bench/wrk_demo.sh [wrk args]
# (default -t1 -c64 -d10s).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ports=()
for i in 1 2 3; do
  "$BUILD/demo_backend" --listen 127.0.0.1:0 --name "b$i" > "$work/b$i.out" &
  pids+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 50); do grep -q listening "$work/b$i.out" && break; sleep 0.1; done
  ports+=("$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/b$i.out")")
done
cat > "$work/sy.yaml" <<YAML
workers: ${WORKERS:-1}
admin: { listen: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: bench
    listen: 127.0.0.1:0
    routes: [ { cluster: demo } ]
clusters:
  - name: demo
    strategy: ${STRATEGY:-round_robin}
    endpoints:
      - address: 127.0.0.1:${ports[0]}
      - address: 127.0.0.1:${ports[1]}
      - address: 127.0.0.1:${ports[2]}
YAML
"$BUILD/switchyard" --config "$work/sy.yaml" 2> "$work/sy.err" &
pids+=($!)
for _ in $(seq 50); do grep -q "serving with" "$work/sy.err" && break; sleep 0.1; done
port=$(sed -n "s/.*listener 'bench' listening on 127.0.0.1:\([0-9]*\).*/\1/p" "$work/sy.err")
admin=$(sed -n 's/.*admin listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/sy.err")
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-t1 -c64 -d10s)
wrk --latency "${args[@]}" "http://127.0.0.1:$port/"
echo "switchyard responses by code:"
curl -s "http://127.0.0.1:$admin/metrics" | grep '^switchyard_downstream_requests_total'
