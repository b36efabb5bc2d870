# Helpers shared by the benchmark scripts (sourced, not run). Loopback only.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 5 s for a line matching pattern in file.
wait_line() {  # file pattern
  for _ in $(seq 100); do grep -q "$2" "$1" && return 0; sleep 0.05; done
  echo "timed out waiting for '$2' in $1" >&2
  return 1
}

# Waits up to 10 s for an HTTP answer on 127.0.0.1:port.
wait_port() {  # port
  for _ in $(seq 200); do
    curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.05
  done
  echo "nothing answers on port $1" >&2
  return 1
}

# From a `wrk --latency` output file: a latency percentile ("50%", "99%"), the socket errors
# (connect + read + write + timeout) and the non-2xx count.
wrk_percentile() { awk -v p="$2" '$1 == p {print $2}' "$1"; }
wrk_errors() { awk '/Socket errors/ {gsub(",", ""); s = $4 + $6 + $8 + $10} END {print s + 0}' "$1"; }
wrk_non2xx() { awk '/Non-2xx/ {n = $5} END {print n + 0}' "$1"; }
