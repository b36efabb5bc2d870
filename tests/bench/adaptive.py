#!/usr/bin/env python3
"""Issue 24's figures: learned resource weights and predictive geography against the static
rules and HAProxy leastconn, on the same shapes, in one run.

  mem   three backends whose latency is 2 ms + 40 ms x the memory figure they report; every
        0.5 s one of them, drawn anew, is heavy (0.8) and the others light (0.05 to 0.2), and
        every CPU figure is drawn too (0.05 to 0.8), independently: it moves and predicts
        nothing. The same seeded sequence for every target.
  cpu   the same with CPU driving latency and memory the noise: the seed's assumption, where
        the learned weights must do no worse
  geo   us-east (2 endpoints, the clients' region) and eu-west (2, 20 ms away); 1 s into the
        run the us-east endpoints slow down by 30 ms every second for 10 s, then fail their
        checks. HAProxy: eu-west as `backup` servers, leastconn, the same checks.

Each target gets the same warm-up (10 s of moving figures for mem/cpu, so that the learner has
its window; 6 s for geo, the baselines' warm-up) and then one wrk run. Ratios are over HAProxy
leastconn's figure in the same run. Usage after `make`: tests/bench/adaptive.sh [--duration 15]
[--shapes "mem cpu geo"]
"""
import argparse
import os
import random
import re
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SY = os.environ.get("SWITCHYARD_BIN", os.path.join(ROOT, "build", "switchyard"))
BACKEND = os.environ.get("DEMO_BACKEND_BIN", os.path.join(ROOT, "build", "demo_backend"))
CONNS = 16
CHECKS = ("    health_check: { path: /healthz, interval: 200ms, timeout: 2s,"
          " healthy_threshold: 1, unhealthy_threshold: 2 }\n")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, path="/", timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2).read()
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.05)
    raise RuntimeError(f"nothing answers on {port}")


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def stop(self, p):
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        self.procs.remove(p)

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p)


def get(port, path):
    urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read()


def backend(procs, name, region="local", extra=()):
    port = free_port()
    procs.start([BACKEND, "--listen", f"127.0.0.1:{port}", "--name", name, "--region", region,
                 *extra])
    wait_port(port, "/healthz")
    return port


def wrk(port, duration, headers=()):
    args = ["wrk", "-t1", f"-c{CONNS}", f"-d{duration}s", "--latency"]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args + [f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                         check=True).stdout

    def ms(label):
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%"),
            "failed": (int(non2xx.group(1)) if non2xx else 0) +
                      (sum(int(x) for x in errors.groups()) if errors else 0)}


def switchyard_yaml(port, cluster):
    return ("workers: 1\nadmin: { listen: 127.0.0.1:0 }\naccess_log: { enabled: false }\n"
            "listeners:\n  - name: bench\n    listen: 127.0.0.1:%d\n"
            "    trusted_proxies: [127.0.0.0/8]\n    local_region: us-east\n"
            "    routes:\n      - cluster: app\n"
            "clusters:\n  - name: app\n%s" % (port, cluster))


def start_switchyard(procs, cluster):
    port = free_port()
    fd, path = tempfile.mkstemp(suffix=".yaml", prefix="adaptive-bench-")
    with os.fdopen(fd, "w") as f:
        f.write(switchyard_yaml(port, cluster))
    p = procs.start([SY, "--config", path])
    wait_port(port)
    return p, port


def start_haproxy(procs, servers, check_path="/healthz"):
    port = free_port()
    lines = "\n".join(
        f"    server s{i} 127.0.0.1:{p} check inter 200 fall 2 rise 1{' backup' if b else ''}"
        for i, (p, b) in enumerate(servers))
    cfg = f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    balance leastconn
    option httpchk GET {check_path}
{lines}
"""
    fd, path = tempfile.mkstemp(suffix=".cfg", prefix="adaptive-bench-")
    with os.fdopen(fd, "w") as f:
        f.write(cfg)
    p = procs.start(["haproxy", "-f", path])
    wait_port(port)
    return p, port


class Mover(threading.Thread):
    """Moves the driving figure of each backend every 0.5 s, a seeded sequence."""

    def __init__(self, ports, signal):
        super().__init__(daemon=True)
        self.ports, self.signal = ports, signal
        self.rng = random.Random(24)
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            heavy = self.rng.randrange(len(self.ports))
            for i, p in enumerate(self.ports):
                v = 0.8 if i == heavy else self.rng.choice((0.05, 0.1, 0.15, 0.2))
                other = self.rng.choice((0.05, 0.2, 0.4, 0.6, 0.8))
                cpu, mem = (v, other) if self.signal == "cpu" else (other, v)
                get(p, f"/control/load?cpu={cpu}&mem={mem}")
            self.stopped.wait(0.5)


def moving_shape(signal, duration):
    procs = Procs()
    rows = []
    try:
        ports = [backend(procs, f"b{i}", extra=("--cpu", "0.3", "--mem", "0.3",
                                                "--latency-follows", "mem" if signal == "mem"
                                                else "cpu", "--latency-scale", "40",
                                                "--latency-ms", "2")) for i in range(3)]
        endpoints = "".join(f"      - address: 127.0.0.1:{p}\n" for p in ports)
        targets = [("haproxy leastconn", None)]
        for score in ("seed", "fused"):
            for weights in ("static", "adaptive"):
                cluster = ("    strategy: resource_aware\n"
                           f"    resource_aware: {{ score: {score}, weights: {weights} }}\n"
                           + CHECKS + f"    endpoints:\n{endpoints}")
                targets.append((f"switchyard {weights}, score {score}", cluster))
        for label, cluster in targets:
            if cluster is None:
                proc, port = start_haproxy(procs, [(p, False) for p in ports])
            else:
                proc, port = start_switchyard(procs, cluster)
            mover = Mover(ports, signal)
            mover.start()
            wrk(port, 10)  # warm-up: the learner's window fills
            r = wrk(port, duration)
            mover.stopped.set()
            mover.join()
            procs.stop(proc)
            rows.append((label, r))
    finally:
        procs.stop_all()
    return rows


def geo_shape(duration):
    procs = Procs()
    rows = []
    try:
        east = [backend(procs, f"e{i}", "us-east") for i in range(2)]
        west = [backend(procs, f"w{i}", "eu-west", ("--rtt-ms", "20")) for i in range(2)]
        endpoints = "".join(f"      - {{ address: 127.0.0.1:{p}, region: us-east }}\n" for p in east)
        endpoints += "".join(f"      - {{ address: 127.0.0.1:{p}, region: eu-west }}\n"
                             for p in west)

        def cluster(predictive):
            return ("    strategy: least_request\n"
                    "    locality: { client_region: \"header:X-Client-Region\","
                    f" min_healthy_fraction: 0.5, predictive: {predictive} }}\n"
                    + CHECKS + f"    endpoints:\n{endpoints}")

        targets = [("haproxy leastconn (eu-west backup)", None),
                   ("switchyard reactive", cluster("false")),
                   ("switchyard predictive", cluster("true"))]
        for label, c in targets:
            for p in east:
                get(p, "/control/latency?ms=0")
                get(p, "/control/health?fail=0")
            if c is None:
                proc, port = start_haproxy(procs, [(p, False) for p in east] +
                                           [(p, True) for p in west])
            else:
                proc, port = start_switchyard(procs, c)
            time.sleep(6)  # checks and baselines

            def ramp():
                time.sleep(1)
                for step in range(1, 21):
                    for p in east:
                        get(p, f"/control/latency?ms={15 * step}")
                    time.sleep(0.5)
                for p in east:
                    get(p, "/control/health?fail=1")

            t = threading.Thread(target=ramp, daemon=True)
            t.start()
            r = wrk(port, duration, headers=("X-Client-Region: us-east",))
            t.join()
            procs.stop(proc)
            rows.append((label, r))
    finally:
        procs.stop_all()
    return rows


def table(title, rows):
    base = rows[0][1]
    print(f"\n{title}\n")
    print("| target | req/s | p50 ms | p99 ms | p99 / HAProxy | failed |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, r in rows:
        ratio = r["p99"] / base["p99"] if r["p99"] and base["p99"] else float("nan")
        print(f"| {label} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {ratio:.2f}x "
              f"| {r['failed']} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--shapes", default="mem cpu geo")
    args = ap.parse_args()
    shapes = args.shapes.split()
    if "mem" in shapes:
        table("mem: latency follows reported memory, CPU moves and predicts nothing", moving_shape("mem", args.duration))
    if "cpu" in shapes:
        table("cpu: latency follows reported CPU, memory moves and predicts nothing", moving_shape("cpu", args.duration))
    if "geo" in shapes:
        table("geo: the clients' region slows down over 10 s, then fails its checks "
              f"(wrk {args.duration} s across it)", geo_shape(max(args.duration, 14)))


if __name__ == "__main__":
    main()
