#!/usr/bin/env bash
# The container test (`make test-container`): builds docker/Dockerfile, runs the image on its own
# config with the demo's four backends in two regions (containers of the same image), waits for its HEALTHCHECK to pass, sends
# requests through it, checks the user it runs as and what the runtime stage holds, then stops
# it with SIGTERM and expects a clean exit.
#
# Every container runs with --network host and every connection goes to 127.0.0.1: no bridge
# network is ever made. Without a reachable engine (DOCKER_HOST, /var/run/docker.sock) the
# script starts its own dockerd the way these machines allow (no bridge, no iptables, its own
# data and exec roots) and stops it at the end. Without a Debian 12 image to build on, it makes
# one from the Debian archive apt uses (debootstrap --variant=minbase) and imports it.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${CONTAINER_WORK:-build/container}
IMAGE=${IMAGE:-switchyard:test}
BASE=${BASE:-switchyard-base:bookworm}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
containers=()
dockerd_pid=""

log() { printf '[container] %s\n' "$*"; }
fail() { printf '[container] FAIL: %s\n' "$*" >&2; exit 1; }
cleanup() {
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
  fi
}
trap cleanup EXIT

# Polls a command until it succeeds or the deadline (seconds) passes.
wait_for() { # deadline description command...
  local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what"
    sleep 0.2
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- the engine ----------------------------------------------------------------------------
# No engine to be had on this machine (no client or daemon, or a daemon that cannot start
# here): exit 77, which .ci/run reports as "skipped" (any other failure is a failure).
no_engine() { printf '[container] SKIP: no Docker engine: %s\n' "$*" >&2; exit 77; }
command -v docker >/dev/null || no_engine "no docker client (apt-get install docker.io)"
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || no_engine "no dockerd (apt-get install docker.io)"
  log "starting dockerd (no bridge, no iptables) under $WORK/engine"
  mkdir -p "$WORK/engine/data" "$WORK/engine/exec"
  export DOCKER_HOST="unix://$WORK/engine/docker.sock"
  dockerd --bridge=none --iptables=false --ip-masq=false \
    --data-root "$WORK/engine/data" --exec-root "$WORK/engine/exec" \
    --pidfile "$WORK/engine/docker.pid" -H "$DOCKER_HOST" >"$WORK/engine/dockerd.log" 2>&1 &
  dockerd_pid=$!
  deadline=$(( $(date +%s) + 60 ))
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$dockerd_pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
      tail -5 "$WORK/engine/dockerd.log" >&2
      no_engine "dockerd did not start here (log: $WORK/engine/dockerd.log)"
    fi
    sleep 0.2
  done
fi

# --- the base image ------------------------------------------------------------------------
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  [ -n "$mirror" ] || mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  command -v debootstrap >/dev/null || fail "no debootstrap: apt-get install debootstrap"
  log "making $BASE with debootstrap from $mirror"
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
  tar -C "$WORK/rootfs" -c . | docker import - "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
fi

# --- build ---------------------------------------------------------------------------------
log "building $IMAGE on $BASE"
docker build --network host --build-arg BASE="$BASE" -f docker/Dockerfile -t "$IMAGE" . \
  >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; fail "docker build"; }

# --- what the image is ---------------------------------------------------------------------
user=$(docker image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = "10001:10001" ] || fail "image user is '$user', expected 10001:10001"
docker image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" | grep -q readyz ||
  fail "no HEALTHCHECK on /readyz"
docker run --rm --network host --entrypoint /bin/sh "$IMAGE" -c \
  'for t in g++ cc c++ cmake ninja curl; do command -v $t && exit 1; done; ldd /usr/local/bin/switchyard | grep -q "not found" && exit 1; exit 0' ||
  fail "the runtime stage holds build tools or misses a library"
docker run --rm --network host "$IMAGE" --check --config /etc/switchyard/switchyard.yaml ||
  fail "the image's own config does not pass --check"
log "image: user 10001, HEALTHCHECK on /readyz, no toolchain, every library present"

# --- run it with two demo backends ---------------------------------------------------------
PROXY=$(free_port); ADMIN=$(free_port)
B=($(free_port) $(free_port) $(free_port) $(free_port))
# The image's own config with this run's ports (it listens on 0.0.0.0:8080 and :9901, and
# expects the backends on 127.0.0.1:9001-9004).
sed -e "s/0\.0\.0\.0:8080/0.0.0.0:$PROXY/" -e "s/0\.0\.0\.0:9901/0.0.0.0:$ADMIN/" \
    -e "s/127\.0\.0\.1:9001/127.0.0.1:${B[0]}/" -e "s/127\.0\.0\.1:9002/127.0.0.1:${B[1]}/" \
    -e "s/127\.0\.0\.1:9003/127.0.0.1:${B[2]}/" -e "s/127\.0\.0\.1:9004/127.0.0.1:${B[3]}/" \
    docker/switchyard.yaml >"$WORK/switchyard.yaml"
chmod 644 "$WORK/switchyard.yaml"
run_backend() { # name region port
  containers+=("sy-test-$1")
  docker rm -f "sy-test-$1" >/dev/null 2>&1 || true
  docker run -d --name "sy-test-$1" --network host --entrypoint demo_backend "$IMAGE" \
    --listen "127.0.0.1:$3" --name "$1" --region "$2" --load >/dev/null
}
run_backend east-a us-east "${B[0]}"
run_backend east-b us-east "${B[1]}"
run_backend west-a eu-west "${B[2]}"
run_backend west-b eu-west "${B[3]}"
containers+=(sy-test-proxy)
docker rm -f sy-test-proxy >/dev/null 2>&1 || true
docker run -d --name sy-test-proxy --network host -e SWITCHYARD_ADMIN_PORT="$ADMIN" \
  -v "$WORK/switchyard.yaml:/etc/switchyard/switchyard.yaml:ro" "$IMAGE" >/dev/null
log "switchyard on 127.0.0.1:$PROXY (admin :$ADMIN), backends ${B[*]}"

healthy() { [ "$(docker inspect --format '{{.State.Health.Status}}' sy-test-proxy)" = healthy ]; }
wait_for 60 "the container's HEALTHCHECK" healthy
[ "$(docker exec sy-test-proxy id -u)" = 10001 ] || fail "switchyard does not run as uid 10001"

# Round robin over both backends through the listener (debug headers name the endpoint).
seen=""
for _ in $(seq 20); do
  body=$(curl -fsS --max-time 5 "http://127.0.0.1:$PROXY/") || fail "request through the container"
  seen="$seen $body"
done
for name in east-a east-b west-a west-b; do
  grep -q "$name" <<<"$seen" || fail "round robin did not reach $name: $seen"
done
# Output captured first: under pipefail, grep -q closing the pipe early fails curl (SIGPIPE).
metrics=$(curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN/metrics") || fail "GET /metrics"
grep -q '^switchyard_upstream_requests_total' <<<"$metrics" || fail "no metrics on the admin port"
# The access-log thread drains the workers' rings in its own time: poll for the lines.
access_logged() { local out; out=$(docker logs sy-test-proxy 2>&1); grep -q '"status":200' <<<"$out"; }
wait_for 15 "a JSON access log on stdout" access_logged
log "20 requests through the container reached all four backends; metrics and access log present"

# SIGTERM: drain and exit 0.
docker stop --time 20 sy-test-proxy >/dev/null
code=$(docker inspect --format '{{.State.ExitCode}}' sy-test-proxy)
[ "$code" = 0 ] || { docker logs sy-test-proxy | tail -20; fail "exit code $code after SIGTERM"; }
log "docker stop: exit 0"

# --- the compose demo ----------------------------------------------------------------------
WORK="$WORK" BASE="$BASE" tests/container/compose.sh
log "PASS"
