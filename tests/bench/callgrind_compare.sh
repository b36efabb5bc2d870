#!/usr/bin/env bash
# Counts user-space instructions per proxied request for switchyard, NGINX and HAProxy with
# callgrind: deterministic, unlike wall-clock CPU on a shared machine. Each proxy (one worker /
# thread, round robin, keep-alive upstream) fronts the same three demo backends; after 300
# warm-up requests the counters are zeroed and exactly 2,000 requests are sent over 4
# keep-alive connections. Needs valgrind, nginx, haproxy and a built tree. Loopback only.
# PROTO=h2c: the clients speak HTTP/2 with prior knowledge (h2load, 4 connections, one stream
# at a time each) and every proxy forwards over HTTP/1.1. SWITCHYARD_BIN: another build to
# count (a before/after comparison); ONLY=switchyard skips the peers.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
work=$(mktemp -d /tmp/callgrind_compare.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
PORT=${PORT:-18199}
PROTO=${PROTO:-http1}
SWITCHYARD_BIN=${SWITCHYARD_BIN:-$ROOT/build/switchyard}
ONLY=${ONLY:-}
if [ "$PROTO" = h2c ]; then
  SY_PROTOCOLS="protocols: [h2, http1], "; NGINX_H2=" http2"; HAPROXY_H2=" proto h2"
  CURL_OPT=--http2-prior-knowledge
else
  SY_PROTOCOLS=""; NGINX_H2=""; HAPROXY_H2=""; CURL_OPT=--http1.1
fi
for i in 1 2 3; do
  "$ROOT/build/demo_backend" --listen "127.0.0.1:1920$i" --name "b$i" > /dev/null &
  pids+=($!)
done
cat > "$work/switchyard.yaml" <<YAML
workers: 1
admin: { listen: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - { name: bench, listen: "127.0.0.1:$PORT", ${SY_PROTOCOLS}routes: [ { cluster: b } ] }
clusters:
  - name: b
    endpoints: [ { address: "127.0.0.1:19201" }, { address: "127.0.0.1:19202" }, { address: "127.0.0.1:19203" } ]
YAML
cat > "$work/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $work;
  upstream be { server 127.0.0.1:19201; server 127.0.0.1:19202; server 127.0.0.1:19203; keepalive 64; }
  server { listen 127.0.0.1:$PORT$NGINX_H2;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
cat > "$work/haproxy.cfg" <<CONF
global
  nbthread 1
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:$PORT$HAPROXY_H2
  default_backend be
backend be
  balance roundrobin
  server b1 127.0.0.1:19201
  server b2 127.0.0.1:19202
  server b3 127.0.0.1:19203
CONF
cat > "$work/drive.py" <<PY
import http.client, sys
conns = [http.client.HTTPConnection("127.0.0.1", $PORT, timeout=30) for _ in range(4)]
for i in range(int(sys.argv[1])):
    c = conns[i % 4]
    c.request("GET", "/", headers={"User-Agent": "ab", "Accept": "*/*"})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
drive() { # requests
  if [ "$PROTO" = h2c ]; then
    h2load -n "$1" -c 4 -m 1 "http://127.0.0.1:$PORT/" > "$work/h2load.out" 2>&1
    grep -q "succeeded, 0 failed, 0 errored" <(grep "requests:" "$work/h2load.out") \
      || { cat "$work/h2load.out" >&2; exit 1; }
  else
    python3 "$work/drive.py" "$1"
  fi
}
measure() { # label command...
  local label=$1; shift
  valgrind --tool=callgrind --callgrind-out-file="$work/$label.out" "$@" > /dev/null 2>&1 &
  local vg=$!
  for _ in $(seq 60); do curl -s $CURL_OPT -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.5; done
  drive 300
  callgrind_control -z "$vg" > /dev/null 2>&1
  drive 2000
  callgrind_control -d "$vg" > /dev/null 2>&1
  sleep 1; kill "$vg"; wait "$vg" 2>/dev/null || true
  local ir
  ir=$(grep -h '^summary:' "$work/$label.out.1" | awk '{s+=$2} END {print s}')
  printf '| %s | %d |\n' "$label" $((ir / 2000))
}
echo "| proxy | user-space instructions per request |"
echo "|---|---:|"
measure switchyard "$SWITCHYARD_BIN" --config "$work/switchyard.yaml"
[ -n "$ONLY" ] && exit 0
measure nginx nginx -c "$work/nginx.conf"
measure haproxy haproxy -f "$work/haproxy.cfg"
