"""Endpoints that come and go (issue 25): a watched file and a real DNS server (dnsmasq).

The file source: endpoints appear and leave as the file changes (replaced by rename, or
rewritten in place), a malformed file keeps the last good set and says FILE:LINE:COL, an
endpoint that stays keeps its state, a removed one finishes what it has in flight and its
series leave /metrics. The DNS source: dnsmasq on loopback, A records rewritten and reloaded
with SIGHUP, SRV records with priorities and weights, an outage and NXDOMAIN changing nothing.
"""
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import urllib.request

from harness import Process, ProxyTestCase, free_port, request, spread, wait_for, time_scale

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def names(port, n=30, path="/"):
    return spread(port, n, path)


def admin_json(sy, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{sy.admin_port}{path}", timeout=5) as r:
        return json.loads(r.read())


def metrics(sy):
    with urllib.request.urlopen(f"http://127.0.0.1:{sy.admin_port}/metrics", timeout=5) as r:
        return r.read().decode()


def cluster_view(sy, name="app"):
    return next(c for c in admin_json(sy, "/admin/clusters")["clusters"] if c["name"] == name)


def write_atomically(path, text):
    """As deploy tools do: another file, renamed over (a new inode)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def endpoints_yaml(backends):
    return "".join(f"- address: {b.address}\n" for b in backends)


def discovery_config(discovery, extra_cluster="", strategy="round_robin"):
    return ("workers: 2\n"
            "admin:\n  listen: 127.0.0.1:0\n"
            "access_log:\n  enabled: false\n"
            "listeners:\n"
            "  - name: ingress\n"
            "    listen: 127.0.0.1:0\n"
            "    routes:\n"
            "      - cluster: app\n"
            "clusters:\n"
            "  - name: app\n"
            f"    strategy: {strategy}\n"
            f"{extra_cluster}"
            f"    discovery:\n{discovery}")


class FileDiscoveryTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="switchyard-discovery-")
        self.path = os.path.join(self.dir, "endpoints.yaml")

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, backends, extra_cluster=""):
        write_atomically(self.path, endpoints_yaml(backends))
        return self.switchyard(discovery_config(f"      file: {{ path: {self.path} }}\n",
                                                extra_cluster))

    def test_endpoints_follow_the_file(self):
        a, b, c = self.backend("a"), self.backend("b"), self.backend("c")
        sy = self.start([a])
        self.assertEqual(set(names(sy.port)), {"a"}, "the first set is there from the start")
        write_atomically(self.path, endpoints_yaml([a, b, c]))
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port)) == {"a", "b", "c"}, 5))
        # Rewritten in place (truncate and write, as an editor or `cat >` does).
        with open(self.path, "w") as f:
            f.write(f"endpoints:\n  - {{ address: {c.address}, weight: 3 }}\n")
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port)) == {"c"}, 5))
        view = cluster_view(sy)
        self.assertEqual([e["address"] for e in view["endpoints"]], [c.address])
        self.assertEqual(view["discovery"]["source"], "file")
        self.assertEqual(view["discovery"]["endpoints"], 1)
        self.assertIsNone(view["discovery"]["last_error"])
        text = metrics(sy)
        self.assertIn('switchyard_discovery_updates_total{cluster="app",result="success",'
                      'source="file"} 3', text)
        # The removed endpoints' series left /metrics; the one that stays is there.
        self.assertNotIn(f'endpoint="{a.address}"', text)
        self.assertNotIn(f'endpoint="{b.address}"', text)
        self.assertIn(f'endpoint="{c.address}"', text)

    def test_a_malformed_file_keeps_the_last_good_set(self):
        a, b = self.backend("a"), self.backend("b")
        sy = self.start([a, b])
        for bad, where in (("- address: 127.0.0.1:1\n  weight: -4\n", ":2:11: [0].weight"),
                           ("- address: example.com:80\n", ":1:12: [0].address"),
                           (f"- address: {a.address}\n- address: {a.address}\n", ":2:3: [1]"),
                           ("- [unclosed\n", ":2:1"),
                           ("", ":1:1: (root): the file is empty")):
            write_atomically(self.path, bad)
            self.assertIsNotNone(wait_for(
                lambda: (cluster_view(sy)["discovery"]["last_error"] or "").startswith(
                    self.path + where), 5), f"{bad!r}: {cluster_view(sy)['discovery']}")
            self.assertEqual(set(names(sy.port, 20)), {"a", "b"}, bad)
        self.assertIn('switchyard_discovery_updates_total{cluster="app",result="failure",'
                      'source="file"} 5', metrics(sy))
        sy.wait_for_line(r"keeping its last set \(2 endpoints\)")
        # Removing the file keeps the set too; writing a good one again applies it.
        os.unlink(self.path)
        self.assertIsNotNone(wait_for(
            lambda: "cannot read the file" in (cluster_view(sy)["discovery"]["last_error"] or ""),
            8))
        self.assertEqual(set(names(sy.port, 20)), {"a", "b"})
        write_atomically(self.path, endpoints_yaml([b]))
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port)) == {"b"}, 5))

    def test_an_endpoint_that_stays_keeps_its_state_and_a_new_one_is_checked_first(self):
        a, b = self.backend("a"), self.backend("b")
        checks = ("    health_check: { path: /healthz, interval: 200ms, timeout: 500ms }\n"
                  "    circuit_breaker: { consecutive_failures: 1000 }\n")
        sy = self.start([a], checks)
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port, 5)) == {"a"}, 5))
        # Give a a record the change must not erase: requests that failed (5xx, counted by its
        # breaker) and its health-check history.
        for _ in range(3):
            request(sy.port, path="/status?code=500")
        before = next(e for e in cluster_view(sy)["endpoints"] if e["address"] == a.address)
        self.assertGreaterEqual(before["failures"], 3)
        write_atomically(self.path, endpoints_yaml([a, b]))
        sy.wait_for_line(rf"endpoint {b.address} of cluster 'app' is healthy", timeout=5)
        after = next(e for e in cluster_view(sy)["endpoints"] if e["address"] == a.address)
        self.assertGreaterEqual(after["failures"], before["failures"])
        self.assertTrue(after["healthy"])
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port)) == {"a", "b"}, 5))

    def test_a_removed_endpoint_finishes_what_it_has_in_flight(self):
        a, b = self.backend("a"), self.backend("b")
        sy = self.start([a])
        result = {}

        def slow():
            result["status"], headers, body = request(sy.port, path="/sleep?ms=1500", timeout=10)
            result["name"] = headers.get("x-backend-name")

        t = threading.Thread(target=slow)
        t.start()
        self.assertIsNotNone(wait_for(
            lambda: any(e["active_requests"] > 0 for e in cluster_view(sy)["endpoints"]), 3))
        write_atomically(self.path, endpoints_yaml([b]))
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port, 10)) == {"b"}, 5))
        t.join(timeout=10)
        self.assertEqual((result.get("status"), result.get("name")), (200, "a"))


class Dnsmasq(Process):
    """dnsmasq on 127.0.0.1:port answering only from the given hosts file and records."""

    def __init__(self, port, hosts_path, records=()):
        super().__init__([DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null",
                          "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
                          "--listen-address=127.0.0.1", f"--port={port}", "--pid-file=",
                          "--user=root", "--local-ttl=0", "--log-facility=-",
                          "--local=/test/",
                          f"--addn-hosts={hosts_path}", *records])
        self.port = port
        # Bound once it answers a query (it logs nothing we can wait for without --log-queries).
        deadline = time.monotonic() + 5 * time_scale()
        while time.monotonic() < deadline:
            if self.answers():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"dnsmasq exited: {''.join(self.stderr)}")
            time.sleep(0.05)
        raise AssertionError("dnsmasq did not answer within 5 s")

    def answers(self):
        # A minimal query for "a.test" A over UDP; any reply will do.
        q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             b"\x01a\x04test\x00\x00\x01\x00\x01")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(q, ("127.0.0.1", self.port))
                return s.recv(512)[:2] == b"\x12\x34"
            except OSError:
                return False


def backends_on_one_port(test, addresses):
    """demo backends on 127.0.0.X:P with one P for all (A records carry no port)."""
    first = test.backend("x2", listen=f"{addresses[0]}:0")
    out = [first]
    for i, ip in enumerate(addresses[1:]):
        out.append(test.backend(f"x{i + 3}", listen=f"{ip}:{first.port}"))
    return first.port, out


class DnsDiscoveryTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.assertTrue(os.path.exists(DNSMASQ), "dnsmasq is missing: run make deps")
        self.dir = tempfile.mkdtemp(prefix="switchyard-dns-")
        self.hosts = os.path.join(self.dir, "hosts")
        self.dns_port = free_port()

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def dnsmasq(self, records=()):
        d = Dnsmasq(self.dns_port, self.hosts, records)
        self.processes.append(d)
        return d

    def set_hosts(self, lines):
        with open(self.hosts, "w") as f:
            f.write("".join(f"{line}\n" for line in lines))

    def dns_config(self, name, extra):
        return discovery_config(
            "      dns:\n"
            f"        name: {name}\n"
            f"        resolvers: [ \"127.0.0.1:{self.dns_port}\" ]\n"
            "        refresh: 2s\n"
            "        min_refresh: 200ms\n"
            "        timeout: 500ms\n"
            f"{extra}")

    def test_a_records_come_and_go_and_an_outage_changes_nothing(self):
        port, (b2, b3) = backends_on_one_port(self, ["127.0.0.2", "127.0.0.3"])
        self.set_hosts(["127.0.0.2 api.test"])
        dns = self.dnsmasq()
        sy = self.switchyard(self.dns_config("api.test", f"        port: {port}\n"))
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port, 10)) == {"x2"}, 5))
        self.set_hosts(["127.0.0.2 api.test", "127.0.0.3 api.test"])
        dns.signal(signal.SIGHUP)
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port)) == {"x2", "x3"}, 5))
        self.set_hosts(["127.0.0.3 api.test"])
        dns.signal(signal.SIGHUP)
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port)) == {"x3"}, 5))
        # The DNS server goes away (its port answers ICMP unreachable, or nothing): the lookups
        # fail, the set stays.
        dns.stop()
        self.assertIsNotNone(wait_for(
            lambda: (cluster_view(sy)["discovery"]["last_error"] or "").startswith("api.test: "),
            5), cluster_view(sy)["discovery"])
        self.assertEqual(set(names(sy.port)), {"x3"})
        # It comes back without the name (NXDOMAIN), then with an empty answer: still the set.
        self.set_hosts(["127.0.0.9 other.test"])
        dns = self.dnsmasq()
        self.assertIsNotNone(wait_for(
            lambda: "NXDOMAIN" in (cluster_view(sy)["discovery"]["last_error"] or ""), 5))
        self.assertEqual(set(names(sy.port)), {"x3"})
        self.set_hosts(["::1 api.test"])  # an AAAA record only: the A query's answer is empty
        dns.signal(signal.SIGHUP)
        self.assertIsNotNone(wait_for(
            lambda: cluster_view(sy)["discovery"]["updates"]["empty"] > 0, 5))
        self.assertEqual(set(names(sy.port)), {"x3"})
        view = cluster_view(sy)
        self.assertEqual(view["discovery"]["endpoints"], 1)
        self.assertEqual([e["address"] for e in view["endpoints"]], [f"127.0.0.3:{port}"])
        text = metrics(sy)
        failures = [line for line in text.splitlines()
                    if line.startswith('switchyard_discovery_updates_total{cluster="app",'
                                       'result="failure"')]
        self.assertEqual(len(failures), 1)
        self.assertGreater(float(failures[0].split()[-1]), 0)

    def test_srv_records_give_ports_weights_and_priorities(self):
        a, b, c = self.backend("a"), self.backend("b"), self.backend("c")
        self.set_hosts(["127.0.0.1 a.test", "127.0.0.1 b.test", "127.0.0.1 c.test"])
        srv = "--srv-host=_http._tcp.api.test"
        self.dnsmasq([f"{srv},a.test,{a.port},0,10", f"{srv},b.test,{b.port},0,30"])
        sy = self.switchyard(self.dns_config("_http._tcp.api.test", "        type: SRV\n"))
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port, 40)) == {"a", "b"}, 5))
        view = cluster_view(sy)
        weights = {e["address"]: e["weight"] for e in view["endpoints"]}
        self.assertEqual(weights, {a.address: 10, b.address: 30})
        counts = names(sy.port, 400)
        self.assertGreater(counts["b"], counts["a"] * 2, counts)
        # dnsmasq reads SRV records from its command line: a restart changes them. c at a lower
        # priority (a higher number) is listed but gets nothing while a and b serve.
        for p in list(self.processes):
            if isinstance(p, Dnsmasq):
                p.stop()
                self.processes.remove(p)
        self.dnsmasq([f"{srv},a.test,{a.port},0,10", f"{srv},c.test,{c.port},1,10"])
        self.assertIsNotNone(wait_for(
            lambda: {e["address"] for e in cluster_view(sy)["endpoints"]} ==
            {a.address, c.address}, 5))
        self.assertEqual(set(names(sy.port, 40)), {"a"})

    def test_a_thousand_srv_records_all_arrive(self):
        # 1,000 records over TCP (the UDP answer is truncated) and 1,000 target lookups, at
        # most 32 in flight: sent all at once, a resolver's socket buffer drops some answers
        # and the lookup times out waiting for c-ares's retries.
        conf = os.path.join(self.dir, "big.conf")
        with open(conf, "w") as f:
            for i in range(1000):
                f.write(f"srv-host=_http._tcp.big.test,t{i}.test,{20000 + i},0,1\n"
                        f"host-record=t{i}.test,127.{1 + i // 250}.{i % 250}.1\n")
        self.set_hosts([])
        self.dnsmasq([f"--conf-file={conf}"])
        sy = self.switchyard(self.dns_config("_http._tcp.big.test", "        type: SRV\n"))
        self.assertIsNotNone(wait_for(
            lambda: cluster_view(sy)["discovery"]["endpoints"] == 1000, 8),
            cluster_view(sy)["discovery"])
        sy.wait_for_line(r"live, [\d.]+ ms after the answer")
