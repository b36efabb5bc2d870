#!/usr/bin/env python3
"""Churn under load (issue 25).

1. wrk -t2 -c64 for CHURN_SECONDS (20) through switchyard to a cluster whose endpoints come
   from a watched file (discovery.file), once with the file left alone and once with an
   endpoint added or removed every 200 ms (4 endpoints always there, 4 more coming and going,
   each new one health-checked before it takes traffic), CHURN_ROUNDS (2) times in turn. The
   run without churn has 6 endpoints, the churned set's mean (4 to 8): on a 2-core machine
   every busy backend process takes CPU from wrk and switchyard, so a baseline of 4 would
   charge the churn for the extra backends. Reported per round: requests, failed requests
   (non-2xx and socket errors), p99 with churn / without, the changes applied, and RSS at the
   churn's start, its highest, and its end; the verdict is on the rounds' median ratio.
2. A 1,000-endpoint SRV answer (dnsmasq on loopback, 1,000 SRV records whose targets have
   1,000 addresses): how long the lookup took (the SRV query and 1,000 address lookups through
   c-ares) and how long from the answer to the live snapshot, for the first set (1,000 new
   endpoints) and for sets where one record changed (1,000 kept, one new, one gone).

Pass: 0 failed, p99 <= 1.2x, RSS at the end within 10% of the start, answer -> live <= 50 ms.
Exit 1 when one fails. Not in CI (about a minute). Usage after `make`: tests/bench/churn.sh
"""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SY = os.environ.get("SWITCHYARD_BIN", os.path.join(ROOT, "build", "switchyard"))
BACKEND = os.environ.get("DEMO_BACKEND_BIN", os.path.join(ROOT, "build", "demo_backend"))
SECONDS = int(os.environ.get("CHURN_SECONDS", "20"))
ROUNDS = int(os.environ.get("CHURN_ROUNDS", "2"))
BASE = int(os.environ.get("BASE_PORT", "18800"))
LISTEN, ADMIN, DNS = BASE, BASE + 1, BASE + 2
STEADY = [BASE + 10 + i for i in range(4)]
CHURNED = [BASE + 20 + i for i in range(4)]
SRV_COUNT = 1000
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
sys.path.insert(0, HERE)
from soak import log, wait_port  # noqa: E402  (the bench scripts' shared helpers)


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def endpoints_file(ports):
    return "".join(f"- address: 127.0.0.1:{p}\n" for p in ports)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def thread_cpu(pid):
    """CPU seconds by thread name (sy-worker-0, ...), from /proc."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_delta(before, after):
    return {k: round(after.get(k, 0) - before.get(k, 0), 2) for k in after}


def metric(name_prefix):
    with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name_prefix):
                return float(line.split()[-1])
    return 0.0


def wrk(seconds):
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency",
                          f"http://127.0.0.1:{LISTEN}/"], capture_output=True, text=True,
                         timeout=seconds + 60).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    failed = (int(non2xx.group(1)) if non2xx else 0) + \
        (sum(int(x) for x in socket_errors.groups()) if socket_errors else 0)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return requests, failed, float(p99.group(1)) * scale, out


def one_round(sy, path, r):
    write_atomically(path, endpoints_file(STEADY + CHURNED[:2]))
    time.sleep(1.5)  # the two extra endpoints' first checks
    log(f"round {r + 1}: without churn (6 endpoints): wrk -c64 {SECONDS}s")
    cpu0 = thread_cpu(sy.pid)
    base = wrk(SECONDS)
    cpu1 = thread_cpu(sy.pid)
    log(f"  switchyard CPU s by thread: {cpu_delta(cpu0, cpu1)}")
    write_atomically(path, endpoints_file(STEADY))
    time.sleep(0.5)
    applied_before = metric('switchyard_discovery_updates_total{cluster="app",'
                            'result="success"')
    stop = threading.Event()
    rss = [rss_kib(sy.pid)]
    changes = [0]

    def churn():
        present = set()
        order = CHURNED + CHURNED  # add 4, then remove 4, and again
        i = 0
        next_at = time.monotonic()
        while not stop.is_set():
            p = order[i % len(order)]
            present.symmetric_difference_update({p})
            write_atomically(path, endpoints_file(STEADY + sorted(present)))
            changes[0] += 1
            i += 1
            next_at += 0.2
            stop.wait(max(0.0, next_at - time.monotonic()))

    def sample():
        while not stop.wait(1.0):
            rss.append(rss_kib(sy.pid))

    threads = [threading.Thread(target=churn), threading.Thread(target=sample)]
    log(f"round {r + 1}: with churn (a change every 200 ms): wrk -c64 {SECONDS}s")
    for t in threads:
        t.start()
    try:
        churned = wrk(SECONDS)
    finally:
        stop.set()
        for t in threads:
            t.join()
    log(f"  switchyard CPU s by thread: {cpu_delta(cpu1, thread_cpu(sy.pid))}")
    rss.append(rss_kib(sy.pid))
    applied = metric('switchyard_discovery_updates_total{cluster="app",'
                     'result="success"') - applied_before
    return base, churned, changes[0], applied, rss


def churn_run(work):
    path = os.path.join(work, "endpoints.yaml")
    write_atomically(path, endpoints_file(STEADY))
    cfg = os.path.join(work, "churn.yaml")
    with open(cfg, "w") as f:
        f.write(f"""workers: 2
admin: {{ listen: 127.0.0.1:{ADMIN} }}
access_log: {{ enabled: false }}
listeners:
  - name: ingress
    listen: 127.0.0.1:{LISTEN}
    routes:
      - cluster: app
clusters:
  - name: app
    strategy: least_request
    health_check: {{ path: /healthz, interval: 1s, timeout: 500ms }}
    discovery:
      file: {{ path: {path} }}
""")
    backends = [subprocess.Popen([BACKEND, "--listen", f"127.0.0.1:{p}", "--name", f"b{p}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for p in STEADY + CHURNED]
    sy = None
    try:
        for p in STEADY + CHURNED:
            if not wait_port(p):
                raise SystemExit(f"backend on {p} did not start")
        sy = subprocess.Popen([SY, "--config", cfg], stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(work, "churn.log"), "w"))
        if not wait_port(LISTEN) or not wait_port(ADMIN):
            raise SystemExit("switchyard did not start")
        subprocess.run(["wrk", "-t2", "-c64", "-d3s", f"http://127.0.0.1:{LISTEN}/"],
                       capture_output=True, timeout=60)  # warm-up
        rounds = []
        for r in range(ROUNDS):
            rounds.append(one_round(sy, path, r))
        return rounds
    finally:
        for p in backends + ([sy] if sy else []):
            p.kill()
            p.wait()


def srv_run(work):
    conf = os.path.join(work, "dnsmasq.conf")
    cfg = os.path.join(work, "srv.yaml")
    with open(cfg, "w") as f:
        f.write(f"""workers: 2
admin: {{ listen: 127.0.0.1:{ADMIN} }}
access_log: {{ enabled: false }}
listeners:
  - name: ingress
    listen: 127.0.0.1:{LISTEN}
    routes:
      - cluster: big
clusters:
  - name: big
    strategy: maglev
    discovery:
      dns:
        name: _http._tcp.big.test
        type: SRV
        resolvers: ["127.0.0.1:{DNS}"]
        min_refresh: 1s
        refresh: 1s
        timeout: 5s
""")

    def write_records(changed):
        with open(conf, "w") as f:
            for i in range(SRV_COUNT):
                port = 20000 + i + (10000 if i < changed else 0)
                f.write(f"srv-host=_http._tcp.big.test,t{i}.test,{port},0,1\n"
                        f"host-record=t{i}.test,127.{1 + i // 250}.{i % 250}.1\n")

    def dnsmasq():
        return subprocess.Popen([DNSMASQ, "--keep-in-foreground", f"--conf-file={conf}",
                                 "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
                                 "--listen-address=127.0.0.1", f"--port={DNS}", "--pid-file=",
                                 "--user=root", "--local-ttl=0", "--local=/test/",
                                 "--log-facility=-"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    write_records(0)
    dns = dnsmasq()
    time.sleep(0.3)
    logfile = os.path.join(work, "srv.log")
    sy = subprocess.Popen([SY, "--config", cfg], stdout=subprocess.DEVNULL,
                          stderr=open(logfile, "w"))
    found, live = [], []
    try:
        if not wait_port(ADMIN):
            raise SystemExit("switchyard did not start")

        def read_log():
            with open(logfile) as f:
                text = f.read()
            return ([float(x) for x in re.findall(r"found in ([\d.]+) ms", text)],
                    [float(x) for x in re.findall(r"live, ([\d.]+) ms after", text)])

        def wait_count(n, timeout=20):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                f, lv = read_log()
                if len(f) >= n and len(lv) >= n:
                    return f, lv
                time.sleep(0.1)
            raise SystemExit(f"no {n} live snapshots within {timeout}s; see {logfile}")

        wait_count(1)
        for changed in range(1, 6):  # one more record changed each time: one new, one gone
            dns.kill()
            dns.wait()
            write_records(changed)
            dns = dnsmasq()
            found, live = wait_count(1 + changed)
        return found, live
    finally:
        sy.kill()
        sy.wait()
        dns.kill()
        dns.wait()


def main():
    for tool in ("wrk",):
        if shutil.which(tool) is None:
            raise SystemExit(f"missing: {tool} (apt-get install wrk)")
    work = tempfile.mkdtemp(prefix="churn.")
    ok = True
    rounds = churn_run(work)
    ratios = []
    first_rss = rounds[0][4][0]
    for r, (base, churned, changes, applied, rss) in enumerate(rounds):
        ratio = churned[2] / base[2]
        ratios.append(ratio)
        print(f"churn round {r + 1}: {changes} changes written, {int(applied)} applied, "
              f"in {SECONDS} s")
        print(f"  without churn: {base[0]} requests, {base[1]} failed, p99 {base[2]:.2f} ms")
        print(f"  with churn:    {churned[0]} requests, {churned[1]} failed, "
              f"p99 {churned[2]:.2f} ms ({ratio:.2f}x), {churned[0] / base[0]:.2f}x requests")
        print(f"  RSS: {rss[0]} KiB at the start, {max(rss)} KiB at most, {rss[-1]} KiB at the "
              f"end")
        if churned[1] != 0 or base[1] != 0:
            ok = False
            print("FAIL: failed requests")
    last_rss = rounds[-1][4][-1]
    median = statistics.median(ratios)
    print(f"churn: p99 with / without, median of {len(ratios)} rounds: {median:.2f}x; RSS "
          f"{first_rss} KiB at the first churn's start, {last_rss} KiB at the last one's end")
    if median > 1.2:
        ok = False
        print("FAIL: p99 with churn above 1.2x")
    if last_rss > first_rss * 1.1:
        ok = False
        print("FAIL: RSS grew by more than 10%")
    found, live = srv_run(work)
    print(f"srv: {SRV_COUNT} records: the first set found in {found[0]:.1f} ms, live "
          f"{live[0]:.1f} ms after the answer")
    print(f"  one record changed, {len(live) - 1} times: found in "
          f"{statistics.median(found[1:]):.1f} ms (median), live {statistics.median(live[1:]):.1f}"
          f" ms after the answer (median; max {max(live[1:]):.1f} ms)")
    if max(live) > 50:
        ok = False
        print("FAIL: a 1,000-endpoint answer took more than 50 ms to become live")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
