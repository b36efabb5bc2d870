#!/usr/bin/env bash
# Starts the demo: four demo backends in two regions, then switchyard in the foreground on
# config/switchyard.yaml. Ctrl-C stops everything.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

start_backend() { # name region port latency [extra flags]
  "$BUILD/demo_backend" --listen "127.0.0.1:$3" --name "$1" --region "$2" \
    --latency-ms "$4" --load --mem 0.4 "${@:5}" >/dev/null &
  pids+=($!)
}
# Every backend reports synthetic load (CPU follows its in-flight requests); east-b has a
# noisy neighbour: a third of its CPU, three times the latency, and its reports say so.
start_backend east-a us-east 9001 0
start_backend east-b us-east 9002 5 --handicap 3
start_backend west-a eu-west 9003 20
start_backend west-b eu-west 9004 25
sleep 0.3

cat <<'MSG'

switchyard demo: listener on http://127.0.0.1:8080, admin on http://127.0.0.1:9901
backends: east-a :9001, east-b :9002 (us-east), west-a :9003, west-b :9004 (eu-west)

Try, in another terminal:
  curl -i http://127.0.0.1:8080/                      # round robin over four backends
  for i in 1 2 3 4; do curl -s http://127.0.0.1:8080/; done
  for i in $(seq 30); do curl -s http://127.0.0.1:8080/api/x; done | sort | uniq -c
                                                      # resource_aware cluster "api": east-b
                                                      #   reports a busy CPU and gets little
  curl -s http://127.0.0.1:8080/geo/                  # cluster "geo" (locality): stays in
                                                      #   us-east, the listener's region
  curl -s -H 'X-Client-Region: eu-west' http://127.0.0.1:8080/geo/   # a trusted proxy's client
  curl -s -H 'X-Client-Zone: us-east-1b' http://127.0.0.1:8080/geo/  # zone preference
  curl -s -X POST --data 'hello' http://127.0.0.1:8080/echo
  curl -s --http2-prior-knowledge http://127.0.0.1:8080/   # HTTP/2 (h2c) on the same port
  nghttp -m 4 http://127.0.0.1:8080/                  # 4 streams on one HTTP/2 connection,
                                                      #   each balanced on its own
  curl -s http://127.0.0.1:9901/admin/clusters        # endpoints and their state
  open http://127.0.0.1:9901/                         # the status page (live charts)
  curl -s 'http://127.0.0.1:9901/admin/explain?path=/geo/&header=X-Client-Region:eu-west'
                                                      # where such a request would go, and why
  curl -s -X POST http://127.0.0.1:9901/admin/reload  # reload config/switchyard.yaml
  curl -s http://127.0.0.1:9901/metrics | grep ^switchyard_
  curl -s "http://127.0.0.1:9002/control/health?fail=1"   # east-b fails its health checks:
                                                      #   it leaves "web" within ~2s
  curl -s "http://127.0.0.1:9002/control/health?fail=0"   # and comes back
  curl -s "http://127.0.0.1:9001/control/health?fail=1"; \
    curl -s "http://127.0.0.1:9002/control/health?fail=1"   # us-east down: /geo/ fails
                                                      #   over to eu-west (fail=0 undoes it)
  kill -HUP $(pgrep -x switchyard)                    # reload config/switchyard.yaml

MSG
"$BUILD/switchyard" --config config/switchyard.yaml &
pids+=($!)
wait "${pids[-1]}"
