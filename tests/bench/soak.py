#!/usr/bin/env python3
"""The soak (issue 22): SOAK_SECONDS (600) of HTTP/1.1, h2c and TLS (h2 and HTTP/1.1) traffic
through switchyard, a reload every 10 s (POST /admin/reload, alternating two configs that add
and remove an endpoint and change the TLS cluster's min_version), and one backend SIGKILLed
every minute and started again 5 s later. switchyard's RSS and open descriptors are sampled
every second; from minute 2 on, every sample must stay within 10% of minute 2's highest, and
the process must never die. Prints the samples' summary; exit 1 on a breach.

Not in CI (it takes SOAK_SECONDS). Usage after `make`: tests/bench/soak.sh
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from tls_certs import TestPKI  # noqa: E402

SY = os.environ.get("SWITCHYARD_BIN", os.path.join(ROOT, "build", "switchyard"))
BACKEND = os.environ.get("DEMO_BACKEND_BIN", os.path.join(ROOT, "build", "demo_backend"))
SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
BASE = int(os.environ.get("BASE_PORT", "18700"))
PLAIN, TLS, ADMIN = BASE, BASE + 1, BASE + 2
BPORTS = [BASE + 10 + i for i in range(4)]
TLS_BPORT = BASE + 20


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def config(pki, variant):
    # variant 0 and 1 differ: the fourth endpoint comes and goes, the TLS cluster's min_version
    # flips (a new upstream TLS context: its pooled connections drain).
    endpoints = BPORTS[:3] if variant == 0 else BPORTS
    eps = "".join(f"      - address: 127.0.0.1:{p}\n" for p in endpoints)
    version = "1.2" if variant == 0 else "1.3"
    return f"""workers: 2
admin: {{ listen: 127.0.0.1:{ADMIN} }}
access_log: {{ enabled: true, format: json }}
listeners:
  - name: plain
    listen: 127.0.0.1:{PLAIN}
    protocols: [h2, http1]
    routes:
      - match: {{ path_prefix: /tls/ }}
        cluster: secure
      - cluster: app
        retries: {{ attempts: 2, "on": [connect_failure, reset] }}
  - name: tls
    listen: 127.0.0.1:{TLS}
    tls:
      certificates:
        - {{ cert_file: {pki.a[0]}, key_file: {pki.a[1]} }}
    routes:
      - cluster: app
        retries: {{ attempts: 2, "on": [connect_failure, reset] }}
clusters:
  - name: app
    strategy: least_request
    health_check: {{ path: /healthz, interval: 500ms, timeout: 500ms, healthy_threshold: 1 }}
    endpoints:
{eps}  - name: secure
    tls: {{ sni: backend.test, ca_file: {pki.ca}, min_version: "{version}" }}
    endpoints:
      - address: 127.0.0.1:{TLS_BPORT}
"""


def start_backend(port, extra=()):
    p = subprocess.Popen([BACKEND, "--listen", f"127.0.0.1:{port}", "--name", f"b{port}",
                          *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        raise SystemExit(f"backend on {port} did not start")
    return p


def sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def main():
    for tool in ("wrk", "h2load"):
        if shutil.which(tool) is None:
            raise SystemExit(f"missing: {tool}")
    pki = TestPKI()
    work = tempfile.mkdtemp(prefix="soak.")
    cfg = os.path.join(work, "switchyard.yaml")
    with open(cfg, "w") as f:
        f.write(config(pki, 0))
    backends = {p: start_backend(p) for p in BPORTS}
    secure = start_backend(TLS_BPORT, ["--tls-cert", pki.backend[0], "--tls-key", pki.backend[1]])
    sy = subprocess.Popen([SY, "--config", cfg], stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(work, "switchyard.log"), "w"))
    for port in (PLAIN, TLS, ADMIN):
        if not wait_port(port):
            raise SystemExit(f"switchyard did not listen on {port}")
    d = f"{SECONDS}s"
    load = [
        subprocess.Popen(["wrk", "-t1", "-c16", f"-d{d}", f"http://127.0.0.1:{PLAIN}/"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        subprocess.Popen(["wrk", "-t1", "-c8", f"-d{d}", f"http://127.0.0.1:{PLAIN}/tls/echo"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        subprocess.Popen(["wrk", "-t1", "-c8", f"-d{d}", f"https://127.0.0.1:{TLS}/"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        subprocess.Popen(["h2load", "-D", str(SECONDS), "-c4", "-m8",
                          f"http://127.0.0.1:{PLAIN}/"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        subprocess.Popen(["h2load", "-D", str(SECONDS), "-c4", "-m8",
                          f"https://127.0.0.1:{TLS}/"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
    ]
    samples, reloads, kills, failed_reloads = [], 0, 0, 0
    killed = None
    t0 = time.monotonic()
    try:
        for second in range(SECONDS):
            time.sleep(max(0.0, t0 + second + 1 - time.monotonic()))
            if sy.poll() is not None:
                raise SystemExit(f"switchyard died (exit {sy.returncode}) at {second} s")
            samples.append((second + 1, *sample(sy.pid)))
            if (second + 1) % 10 == 0:
                with open(cfg, "w") as f:
                    f.write(config(pki, reloads % 2 == 0))
                req = urllib.request.Request(f"http://127.0.0.1:{ADMIN}/admin/reload",
                                             method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        failed_reloads += r.status != 200
                except OSError:
                    failed_reloads += 1
                reloads += 1
            if (second + 1) % 60 == 30:  # kill one (in turn), start it 5 s later
                port = BPORTS[kills % 3]
                backends[port].kill()
                backends[port].wait()
                killed = (port, second + 5)
                kills += 1
            if killed and second + 1 >= killed[1]:
                backends[killed[0]] = start_backend(killed[0])
                killed = None
    finally:
        outs = []
        for p in load:
            try:
                outs.append(p.communicate(timeout=30)[0])
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGINT)
                outs.append(p.communicate(timeout=30)[0])
        sy.send_signal(signal.SIGTERM)
        try:
            sy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sy.kill()
        for p in list(backends.values()) + [secure]:
            p.kill()
    minute2 = [s for s in samples if 60 < s[0] <= 120] or samples
    rss_ref = max(s[1] for s in minute2)
    fd_ref = max(s[2] for s in minute2)
    later = [s for s in samples if s[0] > 120]
    worst_rss = max((s[1] for s in later), default=rss_ref)
    worst_fd = max((s[2] for s in later), default=fd_ref)
    ok = worst_rss <= 1.10 * rss_ref and worst_fd <= 1.10 * fd_ref and failed_reloads == 0
    summary = {"seconds": SECONDS, "reloads": reloads, "failed_reloads": failed_reloads,
               "backend_kills": kills, "rss_kib_minute2_max": rss_ref,
               "rss_kib_later_max": worst_rss, "fds_minute2_max": fd_ref,
               "fds_later_max": worst_fd, "switchyard_exit": sy.returncode,
               "ok": ok}
    with open(os.path.join(work, "samples.json"), "w") as f:
        json.dump({"summary": summary, "samples": samples}, f)
    for o in outs:
        for line in o.splitlines():
            if "requests in" in line or "Socket errors" in line or line.startswith("requests:"):
                print("  " + line.strip())
    print(json.dumps(summary, indent=1))
    print(f"samples: {work}/samples.json", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
