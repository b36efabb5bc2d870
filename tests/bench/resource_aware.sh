#!/usr/bin/env bash
# Issue 6's figure: three demo backends, one three times slower (a noisy neighbour holds two
# thirds of its CPU) and reporting it in endpoint-load-metrics; the same wrk load through
# switchyard round_robin, least_request and resource_aware, HAProxy `balance leastconn` and
# NGINX `least_conn`, one worker/thread each, on the same backends. Prints requests/s, p50,
# p99 and the share of requests that reached the slow backend (counted by a wrk script from
# X-Backend-Name).
#
# SCENARIO=slots (issue 13's second case): three backends with 8 slots each (at most 8
# requests worked on at once, the rest queue) of 5 / 5 / 15 ms, reporting busy slots / slots
# as their CPU, under wrk -c32: the reports do not say which one is slow, only how busy each is.
#
# Usage: tests/bench/resource_aware.sh   (env: BUILD=build CONNS=64 DURATION=10s LATENCY_MS=10
#        SCENARIO=slow|slots)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
SCENARIO=${SCENARIO:-slow}
if [ "$SCENARIO" = slots ]; then CONNS=${CONNS:-32}; else CONNS=${CONNS:-64}; fi
DURATION=${DURATION:-10s}
LATENCY_MS=${LATENCY_MS:-10}
missing=""
for p in wrk haproxy nginx-light; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; }
make --no-print-directory build >/dev/null
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

. tests/bench/lib.sh
ports=("$(free_port)" "$(free_port)" "$(free_port)")
names=(fast1 fast2 slow)
for i in 0 1 2; do
  if [ "$SCENARIO" = slots ]; then
    latency=5
    [ "${names[$i]}" = slow ] && latency=15
    args=(--slots 8 --latency-ms "$latency")
  else
    args=(--load --latency-ms "$LATENCY_MS")
    [ "${names[$i]}" = slow ] && args+=(--handicap 3)
  fi
  "$BUILD/demo_backend" --listen "127.0.0.1:${ports[$i]}" --name "${names[$i]}" "${args[@]}" \
    > "$work/${names[$i]}.out" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do wait_port "${ports[$i]}"; done

cat > "$work/count.lua" <<'LUA'
slow = 0
total = 0
response = function(status, headers, body)
  local name = headers["X-Backend-Name"] or headers["x-backend-name"]
  total = total + 1
  if name == "slow" then slow = slow + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local s, t = 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("slow")
    t = t + thread:get("total")
  end
  io.write(string.format("slow_share %.2f%%\n", t > 0 and 100 * s / t or 0))
end
LUA

run_wrk() {  # label port
  wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$2/" > /dev/null  # warm-up
  wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$work/count.lua" "http://127.0.0.1:$2/" \
    > "$work/$1.txt"
  local rps p50 p99 share errors non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$1.txt")
  p50=$(wrk_percentile "$work/$1.txt" 50%)
  p99=$(wrk_percentile "$work/$1.txt" 99%)
  share=$(awk '/slow_share/ {print $2}' "$work/$1.txt")
  errors=$(wrk_errors "$work/$1.txt")
  non2xx=$(wrk_non2xx "$work/$1.txt")
  printf "| %-28s | %9s | %8s | %8s | %8s | %s / %s |\n" "$1" "$rps" "$p50" "$p99" "$share" \
    "$errors" "$non2xx"
}

endpoints=""
for i in 0 1 2; do endpoints+="      - address: 127.0.0.1:${ports[$i]}"$'\n'; done
run_switchyard() {  # strategy
  local port
  port=$(free_port)
  cat > "$work/sy.yaml" <<YAML
workers: 1
admin: { listen: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: bench
    listen: 127.0.0.1:$port
    routes:
      - cluster: demo
clusters:
  - name: demo
    strategy: $1
    endpoints:
$endpoints
YAML
  "$BUILD/switchyard" --config "$work/sy.yaml" 2> "$work/sy-$1.err" &
  local pid=$!
  pids+=($pid)
  wait_port "$port"
  run_wrk "switchyard $1" "$port"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

run_haproxy() {
  local port
  port=$(free_port)
  {
    printf 'global\n  nbthread 1\n  maxconn 4096\n'
    printf 'defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n'
    printf 'frontend f\n  bind 127.0.0.1:%s\n  default_backend b\n' "$port"
    printf 'backend b\n  balance leastconn\n'
    for i in 0 1 2; do printf '  server s%s 127.0.0.1:%s\n' "$i" "${ports[$i]}"; done
  } > "$work/haproxy.cfg"
  haproxy -f "$work/haproxy.cfg" > "$work/haproxy.out" 2>&1 &
  local pid=$!
  pids+=($pid)
  wait_port "$port"
  run_wrk "HAProxy leastconn" "$port"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

run_nginx() {
  local port
  port=$(free_port)
  {
    printf 'worker_processes 1;\ndaemon off;\npid %s/nginx.pid;\nerror_log %s/nginx.err;\n' "$work" "$work"
    printf 'events { worker_connections 4096; }\nhttp {\n  access_log off;\n'
    printf '  upstream b {\n    least_conn;\n    keepalive 128;\n'
    for i in 0 1 2; do printf '    server 127.0.0.1:%s;\n' "${ports[$i]}"; done
    printf '  }\n  server {\n    listen 127.0.0.1:%s;\n    location / {\n' "$port"
    printf '      proxy_pass http://b;\n      proxy_http_version 1.1;\n'
    printf '      proxy_set_header Connection "";\n    }\n  }\n}\n'
  } > "$work/nginx.conf"
  nginx -p "$work" -c "$work/nginx.conf" > "$work/nginx.out" 2>&1 &
  local pid=$!
  pids+=($pid)
  wait_port "$port"
  run_wrk "NGINX least_conn" "$port"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

if [ "$SCENARIO" = slots ]; then
  echo "wrk -t1 -c$CONNS -d$DURATION; backends: 8 slots each, fast1, fast2 (5 ms), slow (15 ms); reports = busy slots / 8"
else
  echo "wrk -t1 -c$CONNS -d$DURATION; backends: fast1, fast2 (${LATENCY_MS} ms), slow (3 x ${LATENCY_MS} ms, reports 2/3 of its CPU busy)"
fi
echo
echo "| proxy | req/s | p50 | p99 | to the slow backend | socket errors / non-2xx |"
echo "|---|---:|---:|---:|---:|---:|"
run_switchyard round_robin
run_switchyard least_request
run_switchyard resource_aware
run_haproxy
run_nginx
