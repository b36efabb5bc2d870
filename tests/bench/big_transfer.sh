#!/usr/bin/env bash
# A 1 GiB download and a 1 GiB upload, directly and through switchyard, on one connection
# each (curl), ROUNDS times, interleaved; switchyard's resident memory sampled every 50 ms
# while it carries them. Loopback only. Usage, after `make`:
#   tests/bench/big_transfer.sh            # SIZE_MB=1024 ROUNDS=3 by default
# Download source: NGINX serving a sparse file with sendfile (the fastest source this machine
# has, so the proxy is what is measured); upload sink: demo_backend's /discard (reads and
# drops, any size). Prints MB/s direct and proxied, the ratio, and RSS before and at most.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-3}
SY=${SWITCHYARD:-$PWD/build/switchyard}
DB=$PWD/build/demo_backend
work=$(mktemp -d /tmp/big_transfer.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

truncate -s "${SIZE_MB}M" "$work/big.bin"
chmod a+rx "$work" && chmod a+r "$work/big.bin"  # NGINX workers run as nobody
nginx_port=$(free_port)
cat > "$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work;
    location / { }
  }
}
EOF
nginx -c "$work/nginx.conf" -p "$work"
"$DB" --listen 127.0.0.1:0 --name sink > "$work/db.log" 2>&1 &
pids+=($!)
wait_line "$work/db.log" "listening on"
sink_port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$work/db.log")
cat > "$work/sy.yaml" <<EOF
workers: 1
admin: { listen: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: big
    listen: 127.0.0.1:0
    routes:
      - match: { path_prefix: /discard }
        cluster: sink
        timeout: 300s
      - cluster: files
        timeout: 300s
clusters:
  - name: files
    endpoints: [ { address: 127.0.0.1:$nginx_port } ]
  - name: sink
    endpoints: [ { address: 127.0.0.1:$sink_port } ]
EOF
"$SY" --config "$work/sy.yaml" > "$work/sy.log" 2>&1 &
sy_pid=$!
pids+=($sy_pid)
wait_line "$work/sy.log" "serving with"
sy_port=$(sed -n "s/.*listener 'big' listening on [0-9.]*:\([0-9]*\).*/\1/p" "$work/sy.log")

rss() { awk '/VmRSS/ {print $2}' "/proc/$sy_pid/status"; }
rss_before=$(rss)
( max=0; while kill -0 "$sy_pid" 2>/dev/null; do r=$(rss); [ "$r" -gt "$max" ] && max=$r && echo "$max" > "$work/rss.max"; sleep 0.05; done ) &
pids+=($!)

mbps() { python3 -c "print(round($SIZE_MB * 1048576 / $1 / 1e6, 1))"; }
# curl's total time for one transfer.
# curl's total time for one transfer; fails unless the status is 200 and every byte moved.
down() {
  local out; out=$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}' "http://127.0.0.1:$1/big.bin")
  [ "${out%% *}" = 200 ] && [ "$(echo "$out" | cut -d' ' -f2)" = $((SIZE_MB * 1048576)) ] || { echo "download failed: $out" >&2; exit 1; }
  echo "${out##* }"
}
up() {
  local out; out=$(curl -s -D "$work/up.head" -o /dev/null -w '%{http_code} %{time_total}' -T "$work/big.bin" "http://127.0.0.1:$1/discard")
  grep -qi "x-received-length: $((SIZE_MB * 1048576))" "$work/up.head" || { echo "upload failed: $out" >&2; exit 1; }
  echo "${out##* }"
}

down "$nginx_port" > /dev/null  # warm-up: the first read of the file fills the page cache
printf '%-10s %-9s %12s %12s %8s\n' transfer round "direct MB/s" "proxy MB/s" ratio
: > "$work/ratios"
for round in $(seq "$ROUNDS"); do
  d=$(down "$nginx_port"); p=$(down "$sy_port")
  printf '%-10s %-9s %12s %12s %8s\n' download "$round" "$(mbps "$d")" "$(mbps "$p")" \
    "$(python3 -c "print(round($d / $p, 2))")"
  echo "download $(python3 -c "print($d / $p)")" >> "$work/ratios"
  d=$(up "$sink_port"); p=$(up "$sy_port")
  printf '%-10s %-9s %12s %12s %8s\n' upload "$round" "$(mbps "$d")" "$(mbps "$p")" \
    "$(python3 -c "print(round($d / $p, 2))")"
  echo "upload $(python3 -c "print($d / $p)")" >> "$work/ratios"
done
python3 - "$work/ratios" <<'PY'
import statistics, sys
r = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    r.setdefault(k, []).append(float(v))
for k, v in r.items():
    print(f"median {k} ratio (proxy rate / direct rate): {statistics.median(v):.2f}")
PY
sleep 0.2
echo "switchyard RSS: ${rss_before} KiB before, $(cat "$work/rss.max" 2>/dev/null || echo "$rss_before") KiB at most while transferring"
