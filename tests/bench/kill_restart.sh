#!/usr/bin/env bash
# Kills one of three demo backends under load and restarts it (issue 4's figure).
#
# Continuous run: wrk -c64 for 20 s through switchyard (retries on connect_failure and reset,
# health checks every 1 s); backend b2 gets SIGKILL at 5 s and is restarted on the same port at
# 12 s. wrk's error and non-2xx counts are the figure: the goal is 0.
# Then the same in three back-to-back wrk runs (before 5 s / b2 down 7 s / after 8 s) for a
# p99 per phase (wrk reports one latency distribution per run).
#
# Usage: tests/bench/kill_restart.sh   (env: BUILD=build WORKERS=2 CONNS=64)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CONNS=${CONNS:-64}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "${b2_pid:-0}" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

. tests/bench/lib.sh
ports=("$(free_port)" "$(free_port)" "$(free_port)")
start_backend() {  # index
  "$BUILD/demo_backend" --listen "127.0.0.1:${ports[$1]}" --name "b$(($1 + 1))" \
    > "$work/b$1.out" 2>&1 &
  echo $!
}
pids+=("$(start_backend 0)")
b2_pid=$(start_backend 1)
pids+=("$(start_backend 2)")
for i in 0 1 2; do wait_line "$work/b$i.out" listening; done

cat > "$work/sy.yaml" <<YAML
workers: ${WORKERS:-2}
admin: { listen: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: bench
    listen: 127.0.0.1:0
    routes:
      - cluster: demo
        retries: { attempts: 2, on: [connect_failure, reset] }
clusters:
  - name: demo
    strategy: round_robin
    health_check: { path: /healthz, interval: 1s, timeout: 500ms }
    endpoints:
      - address: 127.0.0.1:${ports[0]}
      - address: 127.0.0.1:${ports[1]}
      - address: 127.0.0.1:${ports[2]}
YAML
"$BUILD/switchyard" --config "$work/sy.yaml" 2> "$work/sy.err" &
pids+=($!)
wait_line "$work/sy.err" "serving with"
port=$(sed -n "s/.*listener 'bench' listening on 127.0.0.1:\([0-9]*\).*/\1/p" "$work/sy.err")
admin=$(sed -n 's/.*admin listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/sy.err")
url="http://127.0.0.1:$port/"
for _ in $(seq 100); do
  [ "$(curl -s "http://127.0.0.1:$admin/admin/clusters" | grep -o '"usable":true' | wc -l)" = 3 ] && break
  sleep 0.05
done

summary() {  # wrk output file, label
  local p99 reqs errors non2xx
  p99=$(wrk_percentile "$1" 99%)
  reqs=$(awk '/requests in/ {print $1}' "$1")
  errors=$(wrk_errors "$1")
  non2xx=$(wrk_non2xx "$1")
  printf "%-28s requests %8s  p99 %8s  socket errors %s  non-2xx %s\n" "$2" "$reqs" "$p99" \
    "$errors" "$non2xx"
}

echo "== continuous: wrk -t1 -c$CONNS -d20s; b2 killed at 5 s, restarted at 12 s"
wrk -t1 -c"$CONNS" -d20s --latency "$url" > "$work/all.txt" &
wrk_pid=$!
sleep 5
kill -9 "$b2_pid"
sleep 7
b2_pid=$(start_backend 1)
wait "$wrk_pid"
summary "$work/all.txt" "whole 20 s"

echo "== phases (back-to-back wrk runs)"
sleep 3  # b2 back in service (health checks)
wrk -t1 -c"$CONNS" -d5s --latency "$url" > "$work/before.txt"
summary "$work/before.txt" "before (3 up, 5 s)"
kill -9 "$b2_pid"
wrk -t1 -c"$CONNS" -d7s --latency "$url" > "$work/during.txt"
summary "$work/during.txt" "during (b2 killed, 7 s)"
b2_pid=$(start_backend 1)
wrk -t1 -c"$CONNS" -d8s --latency "$url" > "$work/after.txt"
summary "$work/after.txt" "after (b2 restarted, 8 s)"

echo "== switchyard's view"
curl -s "http://127.0.0.1:$admin/metrics" |
  grep -E '^switchyard_(downstream_requests_total|upstream_retries_total|upstream_retry_budget_exhausted_total|outlier_ejections_total|upstream_connect_failures_total)'
grep -E "ejected|unhealthy|healthy|back in service|trial" "$work/sy.err" | sed 's/^/  log: /' | tail -20
