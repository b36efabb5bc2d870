#!/usr/bin/env bash
# tls_bench.sh -- HTTPS side by side with HAProxy, one run (README, "TLS"): the same ECDSA
# P-256 certificate, TLS 1.3, ALPN http/1.1, one NGINX backend serving a small body, each proxy
# with one thread pinned to CPU 1 and wrk + the backend on CPU 0.
#   keep-alive : wrk -c64 over kept-alive TLS connections (req/s, p99, proxy CPU us/request)
#   handshakes : wrk -c64 with "Connection: close" and session tickets and caches off on both
#                proxies: every request is a full handshake (handshakes/s, CPU us/handshake)
# Usage (after make): tests/bench/tls_bench.sh   Env: DURATION (8s), CONNS (64), ROUNDS (2),
#   SWITCHYARD (build/switchyard), OUT (/tmp/tls_bench/<time>).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-8s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-2}
SWITCHYARD=${SWITCHYARD:-$PWD/build/switchyard}
OUT=${OUT:-/tmp/tls_bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
for bin in wrk haproxy nginx openssl taskset; do
  command -v $bin >/dev/null || { echo "missing $bin (apt-get install wrk haproxy nginx-light)"; exit 2; }
done
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$OUT/key.pem" \
  -out "$OUT/cert.pem" -days 2 -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
  >/dev/null 2>&1
cat "$OUT/cert.pem" "$OUT/key.pem" > "$OUT/combined.pem"

BACKEND=$(free_port)
mkdir -p "$OUT/nginx"
cat > "$OUT/nginx.conf" <<NG
worker_processes 1; daemon off; pid $OUT/nginx.pid; error_log $OUT/nginx.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:$BACKEND; location / { return 200 "ok\n"; } } }
NG
taskset -c 0 nginx -p "$OUT/nginx" -c "$OUT/nginx.conf" >/dev/null 2>&1 & pids+=($!)

start_haproxy() { # tickets(0|1) port
  local extra=""; [ "$1" = 0 ] && extra="no-tls-tickets"
  cat > "$OUT/haproxy.cfg" <<HA
global
  nbthread 1
  tune.ssl.cachesize $([ "$1" = 0 ] && echo 0 || echo 20000)
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:$2 ssl crt $OUT/combined.pem alpn http/1.1 $extra
  default_backend be
backend be
  server b1 127.0.0.1:$BACKEND
HA
  taskset -c 1 haproxy -db -f "$OUT/haproxy.cfg" >"$OUT/haproxy.log" 2>&1 &
  echo $!
}

start_switchyard() { # tickets(0|1) port
  cat > "$OUT/switchyard.yaml" <<SY
workers: 1
admin: { listen: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: tls
    listen: 127.0.0.1:$2
    tls:
      certificates: [{ cert_file: $OUT/cert.pem, key_file: $OUT/key.pem }]
      session_tickets: $([ "$1" = 0 ] && echo false || echo true)
    routes: [{ cluster: app }]
clusters:
  - name: app
    endpoints: [{ address: 127.0.0.1:$BACKEND }]
SY
  taskset -c 1 "$SWITCHYARD" --config "$OUT/switchyard.yaml" >"$OUT/switchyard.log" 2>&1 &
  echo $!
}

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
cpu_ticks() { awk '{print $14 + $15}' /proc/$1/stat; }

# One measurement: prints "req/s p99_ms cpu_us_per_req".
measure() { # pid port close(0|1)
  local pid=$1 port=$2 hdr=()
  [ "$3" = 1 ] && hdr=(-H "Connection: close")
  local before; before=$(cpu_ticks "$pid")
  local out; out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"$DURATION" --latency "${hdr[@]}" \
    "https://127.0.0.1:$port/" 2>&1)
  local after; after=$(cpu_ticks "$pid")
  echo "$out" >> "$OUT/wrk.log"
  python3 - "$before" "$after" "$(getconf CLK_TCK)" <<PY "$out"
import re, sys
before, after, hz = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = sys.argv[4]
total = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
errors = re.search(r"Socket errors: (.*)", out)
cpu_us = (after - before) / hz * 1e6 / max(total, 1)
print(f"{rps:.0f} {p99:.2f} {cpu_us:.1f}" + (f" errors:{errors.group(1).replace(' ', '')}" if errors else ""))
PY
}

declare -A results
for mode in keepalive handshakes; do
  tickets=1; close=0
  [ $mode = handshakes ] && { tickets=0; close=1; }
  for round in $(seq "$ROUNDS"); do
    for proxy in haproxy switchyard; do
      port=$(free_port)
      pid=$(start_$proxy $tickets "$port"); pids+=("$pid")
      wait_port "$port" || { echo "$proxy did not start"; cat "$OUT/$proxy.log"; exit 1; }
      taskset -c 0 wrk -t1 -c"$CONNS" -d2s "https://127.0.0.1:$port/" >/dev/null 2>&1 || true
      r=$(measure "$pid" "$port" $close)
      echo "$mode round $round $proxy: $r" | tee -a "$OUT/results.txt"
      results[$mode.$proxy]="${results[$mode.$proxy]:-} $r"
      kill "$pid"; wait "$pid" 2>/dev/null || true
    done
  done
done
python3 - "$OUT/results.txt" <<'PY' | tee "$OUT/summary.md"
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    head, vals = line.split(":", 1)
    mode, _, _, proxy = head.split()
    rps, p99, cpu = vals.split()[:3]
    rows[(mode, proxy)].append((float(rps), float(p99), float(cpu)))
print("| test | haproxy req/s / p99 ms / CPU us | switchyard req/s / p99 ms / CPU us | switchyard vs HAProxy: req/s, CPU |")
print("|---|---|---|---|")
for mode in ("keepalive", "handshakes"):
    med = {p: [statistics.median(x) for x in zip(*rows[(mode, p)])] for p in ("haproxy", "switchyard")}
    h, s = med["haproxy"], med["switchyard"]
    print(f"| {mode} | {h[0]:.0f} / {h[1]:.2f} / {h[2]:.1f} | {s[0]:.0f} / {s[1]:.2f} / {s[2]:.1f} | "
          f"{s[0] / h[0]:.2f} / {s[2] / h[2]:.2f} |")
PY
