#!/usr/bin/env bash
# Issue 7's figure: the local region fails under load. Six demo backends: us-east (local, no
# network delay), eu-west (4 ms away), ap-south (30 ms away), each answering in 10 ms;
# switchyard (2 workers, locality with fallback nearest, health checks every 500 ms, retries on
# connect failure and reset) in front. Three back-to-back wrk -c64 runs: before (5 s), during
# (both us-east backends SIGKILLed as it starts, 7 s), after (restarted, 8 s). wrk's errors and
# non-2xx are the figure (goal 0), and p99 per phase (goal: during <= 2 x before).
#
# Usage: tests/bench/failover.sh   (env: BUILD=build CONNS=64)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CONNS=${CONNS:-64}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
make --no-print-directory build >/dev/null
work=$(mktemp -d)
pids=()
east_pids=()
cleanup() {
  for p in "${pids[@]}" "${east_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

. tests/bench/lib.sh
names=(e1 e2 w1 w2 s1 s2)
regions=(us-east us-east eu-west eu-west ap-south ap-south)
rtts=(0 0 4 4 30 30)
ports=()
for i in 0 1 2 3 4 5; do ports+=("$(free_port)"); done
start_backend() {  # index
  "$BUILD/demo_backend" --listen "127.0.0.1:${ports[$1]}" --name "${names[$1]}" \
    --region "${regions[$1]}" --latency-ms 10 --rtt-ms "${rtts[$1]}" > "$work/b$1.out" 2>&1 &
  echo $!
}
east_pids=("$(start_backend 0)" "$(start_backend 1)")
for i in 2 3 4 5; do pids+=("$(start_backend "$i")"); done
for i in 0 1 2 3 4 5; do wait_line "$work/b$i.out" listening; done

{
  cat <<YAML
workers: 2
admin: { listen: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: bench
    listen: 127.0.0.1:0
    local_region: us-east
    routes:
      - cluster: app
        retries: { attempts: 2, on: [connect_failure, reset] }
clusters:
  - name: app
    strategy: round_robin
    locality: { fallback: nearest, min_healthy_fraction: 0.5 }
    health_check: { path: /healthz, interval: 500ms, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2 }
    endpoints:
YAML
  for i in 0 1 2 3 4 5; do
    echo "      - { address: 127.0.0.1:${ports[$i]}, region: ${regions[$i]} }"
  done
} > "$work/sy.yaml"
"$BUILD/switchyard" --config "$work/sy.yaml" 2> "$work/sy.err" &
pids+=($!)
wait_line "$work/sy.err" "serving with"
port=$(sed -n "s/.*listener 'bench' listening on 127.0.0.1:\([0-9]*\).*/\1/p" "$work/sy.err")
admin=$(sed -n 's/.*admin listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/sy.err")
url="http://127.0.0.1:$port/"
# All six healthy and every region's round trip measured.
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:$admin/admin/clusters" | python3 -c '
import json, sys
d = json.load(sys.stdin)["clusters"][0]["regions"]
sys.exit(0 if all(r["usable"] == r["endpoints"] and r["latency_ms"] > 0 for r in d) else 1)' && break
  sleep 0.1
done

summary() {  # wrk output file, label
  local p50 p99 reqs errors non2xx
  p50=$(wrk_percentile "$1" 50%)
  p99=$(wrk_percentile "$1" 99%)
  reqs=$(awk '/requests in/ {print $1}' "$1")
  errors=$(wrk_errors "$1")
  non2xx=$(wrk_non2xx "$1")
  printf "| %-34s | %8s | %8s | %8s | %s | %s |\n" "$2" "$reqs" "$p50" "$p99" "$errors" "$non2xx"
}
picks() {
  curl -s "http://127.0.0.1:$admin/metrics" | awk -v l="$1" -F' ' '$1 ~ "switchyard_picks_total" && $1 ~ "locality=\""l"\"" {print $2}'
}

echo "wrk -t1 -c$CONNS through 2 workers; us-east local (0 ms), eu-west 4 ms, ap-south 30 ms; backends answer in 10 ms"
echo
echo "| phase | requests | p50 | p99 | socket errors | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|"
wrk -t1 -c"$CONNS" -d1s "$url" > /dev/null
wrk -t1 -c"$CONNS" -d5s --latency "$url" > "$work/before.txt"
summary "$work/before.txt" "before (all up, 5 s)"
kill -9 "${east_pids[@]}"
wrk -t1 -c"$CONNS" -d7s --latency "$url" > "$work/during.txt"
summary "$work/during.txt" "during (us-east killed, 7 s)"
east_pids=("$(start_backend 0)" "$(start_backend 1)")
wrk -t1 -c"$CONNS" -d8s --latency "$url" > "$work/after.txt"
summary "$work/after.txt" "after (us-east restarted, 8 s)"
echo
echo "picks: local $(picks local), fallback $(picks fallback)"
curl -s "http://127.0.0.1:$admin/metrics" |
  grep -E '^switchyard_(upstream_retries_total|upstream_retry_budget_exhausted_total|upstream_connect_failures_total|outlier_ejections_total|upstream_warm_connections_total)' | sed 's/^/  /'
grep -E "unhealthy|is healthy|ejected" "$work/sy.err" | sed 's/^/  log: /' | tail -12
