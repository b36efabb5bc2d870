#!/usr/bin/env bash
# Shows that the request path takes no lock: switchyard (2 workers, access log on) under
# wrk -c64 for DURATION, with `strace -f -e trace=futex` attached to every thread; prints the
# futex calls per thread name. Worker threads (sy-worker-N) should show none; the control
# thread and the access-log writer are not on the request path. TRACE=futex,epoll_wait shows
# that the tracing itself works (the workers then show their epoll_wait calls). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
DURATION=${DURATION:-5s}
work=$(mktemp -d /tmp/futex_check.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ports=()
for name in a b; do
  build/demo_backend --listen 127.0.0.1:0 --name "$name" > "$work/$name.log" 2>&1 &
  pids+=($!)
  wait_line "$work/$name.log" "listening on"
  ports+=("$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$work/$name.log")")
done
cat > "$work/sy.yaml" <<YAML
workers: 2
admin: { listen: 127.0.0.1:0 }
access_log: { enabled: true, format: text }
listeners:
  - name: in
    listen: 127.0.0.1:0
    routes: [ { cluster: app } ]
clusters:
  - name: app
    endpoints: [ { address: 127.0.0.1:${ports[0]} }, { address: 127.0.0.1:${ports[1]} } ]
YAML
build/switchyard --config "$work/sy.yaml" > /dev/null 2> "$work/sy.err" &
sy=$!
pids+=($sy)
wait_line "$work/sy.err" "serving with"
port=$(sed -n "s/.*listener 'in' listening on [0-9.]*:\([0-9]*\).*/\1/p" "$work/sy.err")
wrk -t1 -c64 -d2s "http://127.0.0.1:$port/" > /dev/null  # warm up: pools, handles, codes
strace -f -e trace=${TRACE:-futex} -o "$work/futex.txt" -p "$sy" 2> /dev/null &
st=$!
sleep 0.5
wrk -t1 -c64 -d"$DURATION" "http://127.0.0.1:$port/" > "$work/wrk.txt"
kill -INT "$st"; wait "$st" 2>/dev/null || true
echo "wrk: $(awk '/requests in/ {print $1, "requests"}' "$work/wrk.txt")"
printf '%-16s %s\n' thread "futex calls while under load"
for task in /proc/$sy/task/*; do
  tid=${task##*/}
  name=$(cat "$task/comm")
  n=$(grep -c "^$tid " "$work/futex.txt" || true)
  printf '%-16s %s\n' "$name" "$n"
done
