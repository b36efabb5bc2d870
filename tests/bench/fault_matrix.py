#!/usr/bin/env python3
"""The fault matrix (issue 22): what clients see when backends fail under load, switchyard beside
HAProxy and NGINX in the same run, each with the same retry and health policy.

Three NGINX backends (b1..b3, 1 worker each; GET / answers 200 with a small body and echoes
x-t0 so that every response carries its own latency). wrk (the shared wrk_timeline.lua:
per-second buckets, latency histograms, status and backend counts) at each of CONNS
connections for DURATION seconds through each proxy, one worker / thread, pinned to CPU 1:

  kill    b2 SIGKILLed at FAULT_AT, started again at RESTART_AT
  kill2   b1 and b2 SIGKILLed at FAULT_AT, started again at RESTART_AT
  stop    b2 SIGSTOPped at FAULT_AT (a black hole: the kernel accepts, nobody answers),
          SIGCONTed at RESTART_AT
  half503 b2 answers half its requests with an instant 503, the whole run

Per case, proxy and connection count: failed requests (non-2xx + socket errors), the p99 of
the fault window [FAULT_AT, FAULT_AT + 3 s) over the baseline p99 [1 s, FAULT_AT), the worst
second's rate over the baseline rate, and the seconds from RESTART_AT until the restarted
backends serve again. Results: a Markdown table on stdout and JSON in OUT_DIR.

The policy every proxy gets: connect timeout 1 s, response timeout 3 s, up to 2 retries on
another backend for connect failures, resets (empty responses) and timeouts, active checks
every second (down after 2 failures, up after 2 passes). Balancing: HAProxy leastconn,
NGINX least_conn, switchyard SY_STRATEGY (least_request by default; README, "The fault
matrix", says why). Nobody retries a 503. HAProxy also gets `observe layer7` with
`error-limit 10 on-error mark-down` (its outlier ejection), NGINX max_fails=3
fail_timeout=5s (passive checks are all it has), switchyard its circuit breaker defaults.

Usage: tests/bench/fault_matrix.sh [--cases "kill stop"] [--conns "64 256"]
       [--targets "haproxy nginx switchyard"]  (after `make`)
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared", "bench"))
sys.path.insert(0, SHARED)
import bench_lib  # noqa: E402  (the shared benchmark's parsers: wrk output, WT lines, histograms)

HOST = "127.0.0.1"
BASE = int(os.environ.get("BASE_PORT", "18500"))
BPORTS = [BASE + 1, BASE + 2, BASE + 3]
PROXY_PORT = {"haproxy": BASE + 10, "nginx": BASE + 11, "switchyard": BASE + 12}
ADMIN_PORT = BASE + 20
DURATION = int(os.environ.get("DURATION", "20"))
FAULT_AT = int(os.environ.get("FAULT_AT", "5"))
RESTART_AT = int(os.environ.get("RESTART_AT", "12"))
WINDOW = 3
SY = os.environ.get("SWITCHYARD_BIN", os.path.join(ROOT, "build", "switchyard"))
SY_STRATEGY = os.environ.get("SY_STRATEGY", "least_request")
SY_EXTRA_ROUTE = os.environ.get("SY_EXTRA_ROUTE", "")      # e.g. a hedge: block
SY_EXTRA_CLUSTER = os.environ.get("SY_EXTRA_CLUSTER", "")
SY_UPSTREAM_EXTRA = os.environ.get("SY_UPSTREAM_EXTRA", "")  # e.g. ", max_idle_per_endpoint: 256"
PIN_PROXY = ["taskset", "-c", "1"]
PIN_LOAD = ["taskset", "-c", "0"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def nginx_conf(work, name, port, half503=False):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    fail = ('map $request_id $sy_fail { "~[0-7]$" 1; default 0; }\n' if half503 else "")
    loc = ('if ($sy_fail) { return 503 "busy\\n"; }\n' if half503 else "")
    conf = os.path.join(work, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; master_process on;
pid {d}/nginx.pid; error_log {d}/error.log warn; worker_rlimit_nofile 65536;
events {{ worker_connections 8192; multi_accept on; }}
http {{
  access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;
  uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
  {fail}
  server {{
    listen {HOST}:{port} backlog=4096;
    add_header x-backend {name} always;
    add_header x-t0 $http_x_t0 always;
    location = /healthz {{ default_type text/plain; return 200 "ok\\n"; }}
    location / {{ default_type text/plain; {loc} return 200 "{'x' * 199}\\n"; }}
  }}
}}
""")
    return conf, d


class Backend:
    def __init__(self, work, i, half503=False):
        self.work, self.i, self.half503 = work, i, half503
        self.name, self.port = f"b{i}", BPORTS[i - 1]
        self.proc = None

    def start(self):
        conf, d = nginx_conf(self.work, self.name, self.port, self.half503)
        self.proc = subprocess.Popen(PIN_LOAD + ["nginx", "-e", f"{d}/error.log", "-p", d,
                                                 "-c", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            raise SystemExit(f"backend {self.name} did not start")

    def pids(self):
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        return [self.proc.pid] + kids

    def kill(self):
        for p in self.pids():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()

    def signal(self, sig):
        for p in self.pids():
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.kill()


def haproxy_conf(work, port):
    servers = "\n".join(f"  server b{i + 1} {HOST}:{p}" for i, p in enumerate(BPORTS))
    path = os.path.join(work, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(f"""global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 3s
  timeout http-keep-alive 30s
  timeout check 1s
  option http-keep-alive
  http-reuse always
frontend fe
  bind {HOST}:{port}
  default_backend be
backend be
  balance leastconn
  option redispatch
  retries 2
  retry-on conn-failure empty-response response-timeout
  option httpchk GET /healthz
  http-check expect status 200
  default-server check inter 1s fall 2 rise 2 observe layer7 error-limit 10 on-error mark-down
{servers}
""")
    return ["haproxy", "-db", "-f", path]


def nginx_proxy_conf(work, port):
    d = os.path.join(work, "np")
    os.makedirs(d, exist_ok=True)
    servers = "\n".join(f"    server {HOST}:{p} max_fails=3 fail_timeout=5s;" for p in BPORTS)
    path = os.path.join(work, "nginx-proxy.conf")
    with open(path, "w") as f:
        f.write(f"""worker_processes 1; daemon off; master_process on;
pid {d}/nginx.pid; error_log {d}/error.log warn; worker_rlimit_nofile 65536;
events {{ worker_connections 20000; multi_accept on; }}
http {{
  access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;
  uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
  upstream be {{
    least_conn;
{servers}
    keepalive 512;
  }}
  server {{
    listen {HOST}:{port} backlog=4096;
    location / {{
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 1s;
      proxy_read_timeout 3s;
      proxy_send_timeout 3s;
    }}
  }}
}}
""")
    return ["nginx", "-e", f"{d}/error.log", "-p", d, "-c", path]


def switchyard_conf(work, port):
    endpoints = "\n".join(f"      - address: {HOST}:{p}" for p in BPORTS)
    path = os.path.join(work, "switchyard.yaml")
    with open(path, "w") as f:
        f.write(f"""workers: 1
admin: {{ listen: {HOST}:{ADMIN_PORT} }}
access_log: {{ enabled: false }}
listeners:
  - name: bench
    listen: {HOST}:{port}
    limits: {{ max_connections: 20000 }}
    routes:
      - cluster: backends
        timeout: 3s
        retries: {{ attempts: 2, "on": [connect_failure, reset, timeout] }}
{SY_EXTRA_ROUTE}clusters:
  - name: backends
    strategy: {SY_STRATEGY}
    health_check: {{ path: /healthz, interval: 1s, timeout: 1s, healthy_threshold: 2,
                    unhealthy_threshold: 2 }}
    upstream: {{ connect_timeout: 1s{SY_UPSTREAM_EXTRA} }}
{SY_EXTRA_CLUSTER}    endpoints:
{endpoints}
""")
    return [SY, "--config", path]


def start_proxy(work, target):
    port = PROXY_PORT[target]
    cmd = {"haproxy": haproxy_conf, "nginx": nginx_proxy_conf,
           "switchyard": switchyard_conf}[target](work, port)
    proc = subprocess.Popen(PIN_PROXY + cmd, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(work, f"{target}.log"), "ab"))
    if not wait_port(port):
        raise SystemExit(f"{target} did not start (see {work}/{target}.log)")
    time.sleep(2.5)  # health checks see every backend up (2 passes at 1 s)
    return proc, port


def one_run(work, case, target, conns, out_dir):
    backends = [Backend(work, i, half503=(case == "half503" and i == 2)) for i in (1, 2, 3)]
    victims = {"kill": [backends[1]], "stop": [backends[1]], "kill2": backends[:2],
               "half503": []}[case]
    proc = None
    try:
        for b in backends:
            b.start()
        proc, port = start_proxy(work, target)
        subprocess.run(PIN_LOAD + ["wrk", "-t1", f"-c{conns}", "-d2s",
                                   f"http://{HOST}:{port}/"], capture_output=True, timeout=40)
        t0 = time.time_ns() // 1000
        env = dict(os.environ, WT_T0_US=str(t0))
        wrk = subprocess.Popen(PIN_LOAD + ["wrk", "-t1", f"-c{conns}", f"-d{DURATION}s",
                                           "--timeout", "5s", "--latency", "-s",
                                           os.path.join(SHARED, "wrk_timeline.lua"),
                                           f"http://{HOST}:{port}/"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                               text=True)

        def at(s):
            delay = t0 / 1e6 + s - time.time()
            if delay > 0:
                time.sleep(delay)

        if victims:
            at(FAULT_AT)
            for v in victims:
                v.signal(signal.SIGSTOP) if case == "stop" else v.kill()
            at(RESTART_AT)
            for v in victims:
                v.signal(signal.SIGCONT) if case == "stop" else v.start()
        text, _ = wrk.communicate(timeout=DURATION + 60)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        for b in backends:
            b.stop()
    with open(os.path.join(out_dir, f"{case}-{target}-c{conns}.txt"), "w") as f:
        f.write(text)
    return summarize(text, case, victims)


def summarize(text, case, victims):
    w = bench_lib.parse_wrk(text)
    wt = bench_lib.parse_wt(text)
    non2xx = sum(n for code, n in wt["status"].items() if not 200 <= code < 300)
    failed = non2xx + sum(w["sock"])
    base_h = bench_lib.merge_hist(wt, 1, FAULT_AT)
    fail_h = bench_lib.merge_hist(wt, FAULT_AT, FAULT_AT + WINDOW)
    base_p99 = bench_lib.hist_pct(base_h, 0.99)
    fail_p99 = bench_lib.hist_pct(fail_h, 0.99)
    base_rate = sum(wt["sec"].get(s, [0])[0] for s in range(1, FAULT_AT)) / max(1, FAULT_AT - 1)
    worst = min((wt["sec"].get(s, [0])[0] for s in range(FAULT_AT, RESTART_AT)), default=0)
    back = None
    if victims:
        names = [v.name for v in victims]
        for s in range(RESTART_AT, DURATION + 1):
            if all(wt["bk"].get(n, {}).get(s, 0) > 0 for n in names):
                back = s - RESTART_AT
                break
    return {"requests": w["requests"], "rps": w["rps"], "failed": failed, "non2xx": non2xx,
            "socket_errors": w["sock"], "base_p99_ms": base_p99, "fail_p99_ms": fail_p99,
            "p99_ratio": (fail_p99 / base_p99) if base_p99 and fail_p99 else None,
            "worst_second_ratio": worst / base_rate if base_rate else None,
            "recover_s": back}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="kill kill2 stop half503")
    ap.add_argument("--conns", default="64 256")
    ap.add_argument("--targets", default="haproxy nginx switchyard")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    out_dir = a.out or f"/tmp/fault_matrix/{time.strftime('%Y%m%d-%H%M%S')}"
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="fault_matrix.")
    results = []
    for case in a.cases.split():
        for conns in [int(c) for c in a.conns.split()]:
            for target in a.targets.split():
                log(f"{case} c{conns} {target}")
                r = one_run(work, case, target, conns, out_dir)
                r.update({"case": case, "conns": conns, "target": target})
                results.append(r)
                log(f"  failed {r['failed']}, fail/base p99 {bench_lib.fmt(r['p99_ratio'])}, "
                    f"worst second {bench_lib.fmt(r['worst_second_ratio'])}, "
                    f"back after {r['recover_s']} s")
                time.sleep(1)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("| case | conns | proxy | requests | failed | base p99 ms | fault p99 ms | fault/base p99 "
          "| worst second / base rate | recovered after s |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['case']} | {r['conns']} | {r['target']} | {r['requests']} | {r['failed']} | "
              f"{bench_lib.fmt(r['base_p99_ms'])} | {bench_lib.fmt(r['fail_p99_ms'])} | "
              f"{bench_lib.fmt(r['p99_ratio'])} | {bench_lib.fmt(r['worst_second_ratio'])} | "
              f"{'-' if r['recover_s'] is None else r['recover_s']} |")
    print(f"\nraw wrk output and summary.json: {out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
