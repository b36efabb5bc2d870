#!/usr/bin/env bash
# h2_bench.sh -- HTTP/2 side by side (README, "HTTP/2 and gRPC"), one run: h2load with 100
# streams over 10 connections (-c 10 -m 10) against
#   switchyard  h2c downstream, h2c upstream (clusters[].protocol: h2c)
#   switchyard  h2c downstream, HTTP/1.1 upstream
#   HAProxy     h2 both sides (bind proto h2, server proto h2)
#   NGINX       h2 downstream, HTTP/1.1 keep-alive upstream (it proxies HTTP/2 only as grpc_pass)
# to one NGINX backend (h2c and HTTP/1.1 ports) answering a small or a 16 KiB body. Each proxy
# runs one thread pinned to CPU 1; h2load and the backend share CPU 0. Reports req/s and proxy
# CPU us per request. Then the per-call balancing table: 4 HTTP/2 clients holding one
# connection each, 3 backends, the request share each backend saw through each proxy.
# Usage (after make): tests/bench/h2_bench.sh
# Env: DURATION (8), ROUNDS (2), OUT, BODIES ("small 16k"; also 1k, 256k, 1m).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-2}
BODIES=${BODIES:-small 16k}
SWITCHYARD=${SWITCHYARD:-$PWD/build/switchyard}
OUT=${OUT:-/tmp/h2_bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
for bin in h2load haproxy nginx taskset; do
  command -v $bin >/dev/null || { echo "missing $bin (apt-get install nghttp2-client haproxy nginx-light)"; exit 2; }
done
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
cpu_ticks() { awk '{print $14 + $15}' /proc/$1/stat; }

H1=$(free_port); H2C=$(free_port)
B1=$(free_port); B2=$(free_port); B3=$(free_port)
mkdir -p "$OUT/nginx-backend" "$OUT/www"
for kib in 1 16 256 1024; do
  name=${kib}k; [ $kib = 1024 ] && name=1m
  head -c $((kib * 1024)) /dev/zero | tr '\0' 'x' > "$OUT/www/$name"
done
echo ok > "$OUT/www/small"
cat > "$OUT/backend.conf" <<NG
worker_processes 1; daemon off; pid $OUT/backend.pid; error_log $OUT/backend.err warn;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 10000000; keepalive_timeout 300s;
  http2_max_concurrent_streams 1000;
  server { listen 127.0.0.1:$H1; listen 127.0.0.1:$H2C http2; root $OUT/www; }
  log_format n "\$server_port";
  server { listen 127.0.0.1:$B1; listen 127.0.0.1:$B2; listen 127.0.0.1:$B3;
           access_log $OUT/shares.log n; root $OUT/www; } }
NG
taskset -c 0 nginx -p "$OUT/nginx-backend" -c "$OUT/backend.conf" >/dev/null 2>&1 & pids+=($!)
wait_port $H2C

start_proxy() { # kind port backends...
  local kind=$1 port=$2; shift 2
  case $kind in
    switchyard-h2c|switchyard-http1)
      local proto=h2c; [ $kind = switchyard-http1 ] && proto=http1
      { echo "workers: 1"; echo "admin: { listen: 127.0.0.1:0 }"; echo "access_log: { enabled: false }"
        echo "listeners:"; echo "  - name: h2"; echo "    listen: 127.0.0.1:$port"
        echo "    protocols: [h2, http1]"; echo "    routes: [{ cluster: app }]"
        echo "clusters:"; echo "  - name: app"; echo "    protocol: $proto"; echo "    endpoints:"
        for b in "$@"; do echo "      - address: 127.0.0.1:$b"; done; } > "$OUT/$kind.yaml"
      taskset -c 1 "$SWITCHYARD" --config "$OUT/$kind.yaml" >"$OUT/$kind.log" 2>&1 & ;;
    haproxy)
      { echo "global"; echo "  nbthread 1"; echo "defaults"; echo "  mode http"
        echo "  timeout connect 5s"; echo "  timeout client 30s"; echo "  timeout server 30s"
        echo "  http-reuse always"; echo "frontend fe"; echo "  bind 127.0.0.1:$port proto h2"
        echo "  default_backend be"; echo "backend be"; echo "  balance roundrobin"
        local i=0; for b in "$@"; do i=$((i+1)); echo "  server b$i 127.0.0.1:$b ${HA_SERVER_OPTS-proto h2}"; done
      } > "$OUT/haproxy.cfg"
      taskset -c 1 haproxy -db -f "$OUT/haproxy.cfg" >"$OUT/haproxy.log" 2>&1 & ;;
    nginx)
      mkdir -p "$OUT/nginx-proxy"
      { echo "worker_processes 1; daemon off; pid $OUT/proxy.pid; error_log $OUT/proxy.err warn;"
        echo "events { worker_connections 8192; }"
        echo "http { access_log off; keepalive_requests 10000000; http2_max_concurrent_streams 1000;"
        echo "  upstream be { keepalive 256;"
        for b in "$@"; do echo "    server 127.0.0.1:$b;"; done
        echo "  }"
        echo "  server { listen 127.0.0.1:$port http2; location / { proxy_pass http://be;"
        echo "    proxy_http_version 1.1; proxy_set_header Connection \"\"; } } }"; } > "$OUT/proxy.conf"
      taskset -c 1 nginx -p "$OUT/nginx-proxy" -c "$OUT/proxy.conf" >/dev/null 2>&1 & ;;
  esac
  echo $!
}

measure() { # pid port path -> "req/s cpu_us"
  local pid=$1 port=$2 path=$3
  local before; before=$(cpu_ticks "$pid")
  local out; out=$(taskset -c 0 h2load -c 10 -m 10 -D "$DURATION" "http://127.0.0.1:$port$path" 2>&1)
  local after; after=$(cpu_ticks "$pid")
  echo "$out" >> "$OUT/h2load.log"
  python3 - "$before" "$after" "$(getconf CLK_TCK)" <<PY "$out"
import re, sys
before, after, hz = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = sys.argv[4]
done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out).group(2))
rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
failed = re.search(r"(\d+) failed, (\d+) errored", out)
cpu_us = (after - before) / hz * 1e6 / max(done, 1)
print(f"{rps:.0f} {cpu_us:.1f} failed:{failed.group(1)}+{failed.group(2)}")
PY
}

KINDS="haproxy nginx switchyard-h2c switchyard-http1"
for round in $(seq "$ROUNDS"); do
  for body in $BODIES; do
    for kind in $KINDS; do
      port=$(free_port)
      case $kind in
        nginx|switchyard-http1) backend=$H1; HA_SERVER_OPTS="" ;;
        *) backend=$H2C; HA_SERVER_OPTS="proto h2" ;;
      esac
      export HA_SERVER_OPTS
      pid=$(start_proxy $kind "$port" $backend); pids+=("$pid")
      wait_port "$port" || { echo "$kind did not start"; exit 1; }
      cpu_pid=$pid
      [ $kind = nginx ] && { sleep 0.3; cpu_pid=$(pgrep -P "$(cat "$OUT/proxy.pid")" | head -1); }
      taskset -c 0 h2load -c 10 -m 10 -D 1 "http://127.0.0.1:$port/$body" >/dev/null 2>&1 || true
      r=$(measure "$cpu_pid" "$port" "/$body")
      echo "$body round $round $kind: $r" | tee -a "$OUT/results.txt"
      kill "$pid"; wait "$pid" 2>/dev/null || true
      [ $kind = nginx ] && { kill "$(cat "$OUT/proxy.pid")" 2>/dev/null || true; sleep 0.3; }
    done
  done
done

# Per-call balancing: 4 clients, one connection each, 3 backends (NGINX logs the port it served on).
echo "| proxy | 3000 requests: succeeded; per backend port (share) |" > "$OUT/shares.md"
echo "|---|---|" >> "$OUT/shares.md"
for kind in haproxy nginx switchyard-http1; do
  : > "$OUT/shares.log"
  port=$(free_port); HA_SERVER_OPTS=""; export HA_SERVER_OPTS
  pid=$(start_proxy $kind "$port" $B1 $B2 $B3); pids+=("$pid")
  wait_port "$port"; [ $kind = nginx ] && sleep 0.3
  ok=$(taskset -c 0 h2load -n 3000 -c 4 -m 10 "http://127.0.0.1:$port/small" 2>&1 | grep -o '[0-9]* succeeded')
  sleep 0.5
  shares=$(sort "$OUT/shares.log" | uniq -c | awk -v n="$(wc -l < "$OUT/shares.log")" '{printf "%s %d (%.1f%%), ", $2, $1, 100*$1/n}')
  echo "| $kind | $ok; $shares |" | tee -a "$OUT/shares.md"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ $kind = nginx ] && { kill "$(cat "$OUT/proxy.pid" 2>/dev/null)" 2>/dev/null || true; sleep 0.3; }
done

python3 - "$OUT/results.txt" $BODIES <<'PY' | tee "$OUT/summary.md"
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    head, vals = line.split(":", 1)
    body, _, _, kind = head.split()
    rps, cpu = vals.split()[:2]
    rows[(body, kind)].append((float(rps), float(cpu)))
kinds = ["haproxy", "nginx", "switchyard-h2c", "switchyard-http1"]
print("| body | " + " | ".join(f"{k} req/s / CPU us" for k in kinds) + " | switchyard-h2c vs HAProxy: req/s, CPU |")
print("|---|" + "---|" * (len(kinds) + 1))
for body in sys.argv[2:]:
    med = {k: [statistics.median(x) for x in zip(*rows[(body, k)])] for k in kinds}
    cells = " | ".join(f"{med[k][0]:.0f} / {med[k][1]:.1f}" for k in kinds)
    h, s = med["haproxy"], med["switchyard-h2c"]
    print(f"| {body} | {cells} | {s[0] / h[0]:.2f} / {s[1] / h[1]:.2f} |")
PY
cat "$OUT/shares.md"
