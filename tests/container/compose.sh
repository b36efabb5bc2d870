#!/usr/bin/env bash
# The compose demo (docker/compose.yaml) brought up, used and taken down; run by
# tests/container/run.sh once its engine and base image are there (DOCKER_HOST, BASE, WORK).
#
# The file is used as written (its services, images, builds, commands, entrypoints, volumes
# and dependencies) with the changes a machine without a bridge network needs, made by
# compose_for_test.py: every service on the host's network (no published ports), every
# address on 127.0.0.1 with this run's free ports, builds on the host network. Then: `up
# --build`, 20 requests answered by the demo's backends (all four seen by the admin API), Prometheus scraping
# switchyard (its `up` series is 1), `down`, and no container of the project left.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${WORK:?}" "${BASE:?}"
PROJECT=sy-compose-test
dir="$WORK/compose"
rm -rf "$dir" && mkdir -p "$dir"

log() { printf '[compose] %s\n' "$*"; }
fail() {
  printf '[compose] FAIL: %s\n' "$*" >&2
  docker-compose -f "$dir/compose.yaml" -p "$PROJECT" logs --tail 20 >&2 2>/dev/null || true
  exit 1
}
wait_for() { # deadline description command...
  local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what"
    sleep 0.5
  done
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
down() {
  docker-compose -f "$dir/compose.yaml" -p "$PROJECT" down --remove-orphans --timeout 20 \
    >"$dir/down.log" 2>&1
}
trap 'down || true' EXIT

command -v docker-compose >/dev/null || fail "no docker-compose (apt-get install docker-compose)"
PROXY=$(free_port) ADMIN=$(free_port) PROM=$(free_port)
B1=$(free_port) B2=$(free_port) B3=$(free_port) B4=$(free_port)
export PROXY ADMIN PROM B1 B2 B3 B4
/usr/bin/python3 tests/container/compose_for_test.py "$PWD" "$dir" || fail "compose file rewrite"

log "up --build (switchyard on 127.0.0.1:$PROXY, admin :$ADMIN, Prometheus :$PROM)"
BASE="$BASE" docker-compose -f "$dir/compose.yaml" -p "$PROJECT" up -d --build \
  >"$dir/up.log" 2>&1 || { tail -30 "$dir/up.log"; fail "docker-compose up"; }

wait_for 90 "switchyard through compose" curl -fsS --max-time 2 "http://127.0.0.1:$PROXY/"
seen=""
for _ in $(seq 20); do
  body=$(curl -fsS --max-time 5 "http://127.0.0.1:$PROXY/") || fail "request through compose"
  seen="$seen $body"
done
# The demo balances by load and region (not round robin), so which backends 20 requests reach
# varies; every answer must come from one of them, and the admin API must see all four.
[ "$(grep -o 'hello from [a-z-]*' <<<"$seen" | wc -l)" = 20 ] || fail "answers: $seen"
all_four() {
  local out; out=$(curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN/admin/clusters") || return 1
  for p in "$B1" "$B2" "$B3" "$B4"; do grep -q "127.0.0.1:$p" <<<"$out" || return 1; done
}
wait_for 30 "the admin API to list all four backends" all_four
log "20 requests answered by the demo's backends; the admin API lists all four"

scraped() { # output captured first: grep -q under pipefail would SIGPIPE curl
  local out
  out=$(curl -fsS --max-time 2 "http://127.0.0.1:$PROM/api/v1/query?query=up%7Bjob%3D%22switchyard%22%7D") &&
    grep -q '"value":\[[0-9.]*,"1"\]' <<<"$out"
}
wait_for 90 "Prometheus to scrape switchyard" scraped
log "Prometheus scrapes switchyard (up == 1)"

down || fail "docker-compose down"
left=$(docker ps -a --filter "label=com.docker.compose.project=$PROJECT" -q | wc -l)
[ "$left" = 0 ] || fail "$left containers of the project left after down"
log "down: no container left"
trap - EXIT
log "PASS"
