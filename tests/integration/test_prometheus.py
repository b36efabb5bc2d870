"""A real Prometheus server (Debian's prometheus) scrapes switchyard's admin port on loopback
every second; its HTTP API must return the request counters and duration buckets the traffic
made, with the expected labels, and promtool must accept a live scrape. Every query of the
Grafana dashboard (docker/grafana/switchyard.json) must return data from that Prometheus."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from harness import ROOT, ProxyTestCase, Process, config, free_port, request, time_scale

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
REQUESTS = 40


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as res:
        return res.status, res.read().decode()


class PrometheusScrapeTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        for tool in (PROMETHEUS, PROMTOOL):
            self.assertTrue(os.access(tool, os.X_OK),
                            f"{tool} missing: `make deps` installs Debian's prometheus")
        self.dir = tempfile.mkdtemp(prefix="switchyard-prom-")

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_prometheus(self, admin_port):
        path = os.path.join(self.dir, "prometheus.yml")
        with open(path, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                    "scrape_configs:\n  - job_name: switchyard\n"
                    f"    static_configs:\n      - targets: ['127.0.0.1:{admin_port}']\n")
        port = free_port()
        prom = Process([PROMETHEUS, f"--config.file={path}",
                        f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=warn"])
        self.processes.append(prom)
        self.api = f"http://127.0.0.1:{port}"
        self.poll(lambda: get(self.api + "/-/ready")[0] == 200, 30, "prometheus ready")
        return prom

    def poll(self, check, timeout, what):
        deadline = time.monotonic() + timeout * time_scale()
        last = None
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except (OSError, ValueError, KeyError) as e:
                last = e
            time.sleep(0.2)
        self.fail(f"timed out after {timeout}s waiting for {what} (last error: {last})")

    def query(self, expr):
        _, body = get(self.api + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        doc = json.loads(body)
        self.assertEqual(doc["status"], "success", body)
        return doc["data"]["result"]

    def test_a_real_prometheus_scrapes_the_admin_port(self):
        b1 = self.backend("one")
        b2 = self.backend("two")
        sy = self.switchyard(config([b1, b2]))
        self.start_prometheus(sy.admin_port)

        def target_up():
            _, body = get(self.api + "/api/v1/targets")
            targets = json.loads(body)["data"]["activeTargets"]
            return len(targets) == 1 and targets[0]["health"] == "up"
        self.poll(target_up, 30, "the switchyard target to be up")

        for _ in range(REQUESTS):
            status, _, _ = request(sy.port)
            self.assertEqual(status, 200)

        def counters_arrived():
            series = self.query('switchyard_upstream_requests_total{cluster="app"}')
            by_endpoint = {s["metric"]["endpoint"]: s for s in series}
            if set(by_endpoint) != {b1.address, b2.address}:
                return False
            for s in series:
                self.assertEqual(s["metric"]["code"], "200")
                self.assertEqual(s["metric"]["job"], "switchyard")
            return sum(float(s["value"][1]) for s in series) == REQUESTS
        self.poll(counters_arrived, 30, f"{REQUESTS} requests in switchyard_upstream_requests_total")
        # Round robin over two endpoints (each worker keeps its own cursor): both near half.
        for s in self.query('switchyard_upstream_requests_total{cluster="app"}'):
            self.assertGreaterEqual(float(s["value"][1]), REQUESTS / 4, s)

        def buckets_arrived():
            series = self.query(
                'switchyard_upstream_request_duration_seconds_bucket{cluster="app"}')
            les = {s["metric"]["le"]: float(s["value"][1]) for s in series}
            return les.get("+Inf") == REQUESTS and len(les) > 5
        self.poll(buckets_arrived, 30, "the duration histogram's buckets")
        # Buckets are cumulative: non-decreasing in le, the last one counts every request.
        series = self.query('switchyard_upstream_request_duration_seconds_bucket{cluster="app"}')
        pairs = sorted((float(s["metric"]["le"]), float(s["value"][1])) for s in series)
        counts = [c for _, c in pairs]
        self.assertEqual(counts, sorted(counts))
        count = self.query('switchyard_upstream_request_duration_seconds_count{cluster="app"}')
        self.assertEqual(float(count[0]["value"][1]), REQUESTS)
        # A quantile over the scraped buckets is a number (what a dashboard plots).
        p99 = self.query('histogram_quantile(0.99, sum by (le) (rate('
                         'switchyard_upstream_request_duration_seconds_bucket[1m])))')
        self.assertEqual(len(p99), 1)

    def test_every_grafana_query_returns_data(self):
        with open(os.path.join(ROOT, "docker", "grafana", "switchyard.json")) as f:
            dashboard = json.load(f)
        queries = [(panel["title"], t["expr"]) for panel in dashboard["panels"]
                   for t in panel["targets"]]
        self.assertGreaterEqual(len(queries), 15)
        # Traffic that gives every panel something: a checked cluster that answers, and a
        # discovered one whose only endpoint is dead (connect failures, a retry, 5xx, then
        # no usable endpoint once its check fails).
        b1, b2 = self.backend("one"), self.backend("two")
        found = os.path.join(self.dir, "found.yaml")
        with open(found, "w") as f:
            f.write(f"- address: 127.0.0.1:{free_port()}\n")
        checks = "    health_check: { path: /healthz, interval: 300ms, timeout: 300ms }\n"
        cfg = config([b1, b2], extra_cluster=checks, routes=(
            "      - match: { path_prefix: /found }\n"
            "        cluster: found\n"
            "        retries: { attempts: 1, on: [connect_failure] }\n"
            "      - cluster: app\n")) + (
            "  - name: found\n" + checks +
            f"    discovery: {{ file: {{ path: {found} }} }}\n")
        sy = self.switchyard(cfg)
        self.start_prometheus(sy.admin_port)
        expand = {"$__rate_interval": "10s", "$__range": "1m", "$cluster": ".*"}

        def run(expr):
            for k, v in expand.items():
                expr = expr.replace(k, v)
            return self.query(expr)

        def all_answer():
            for _ in range(5):
                request(sy.port)
                request(sy.port, path="/found")
            empty = [title for title, expr in queries if not run(expr)]
            self.last_empty = empty
            return not empty
        self.last_empty = None
        deadline = time.monotonic() + 40 * time_scale()
        while time.monotonic() < deadline and not all_answer():
            time.sleep(0.5)
        self.assertEqual(self.last_empty, [], "panels whose queries return nothing")
        for title, expr in queries:  # and every number is a number
            for series in run(expr):
                float(series["value"][1])

    def test_live_scrape_passes_promtool_and_naming_rules(self):
        b1 = self.backend("one")
        sy = self.switchyard(config([b1], extra_cluster=(
            "    health_check: { path: /healthz, interval: 200ms }\n")))
        for _ in range(5):
            request(sy.port)
        _, text = get(f"http://127.0.0.1:{sy.admin_port}/metrics")
        lint = subprocess.run([PROMTOOL, "check", "metrics"], input=text, text=True,
                              capture_output=True, timeout=30)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
        self.assertEqual(lint.stdout.strip(), "", lint.stdout)

        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        helps = dict(re.findall(r"^# HELP (\S+) (.+)$", text, re.M))
        self.assertGreater(len(types), 15)
        for name, kind in types.items():
            self.assertTrue(name.startswith("switchyard_"), name)
            self.assertIn(name, helps, f"{name} has no HELP")
            self.assertTrue(helps[name].strip(), f"{name} has an empty HELP")
            if kind == "counter":
                self.assertTrue(name.endswith("_total"), f"counter {name} lacks _total")
            # Base units only: seconds and bytes, never milliseconds or kilobytes.
            self.assertIsNone(re.search(r"_(ms|milliseconds|us|microseconds|kb|kilobytes|mb)(_|$)",
                                        name), name)
            if kind == "histogram":
                self.assertTrue(name.endswith(("_seconds", "_bytes")), f"histogram {name} unit")


if __name__ == "__main__":
    unittest.main()
