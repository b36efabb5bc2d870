"""Process lifecycle: drain on SIGTERM, reload on SIGHUP, admin endpoints, access log."""
import http.client
import signal
import threading
import time
import urllib.request

from harness import ProxyTestCase, config, request, time_scale, wait_for


def admin_get(sy, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{sy.admin_port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class DrainTest(ProxyTestCase):
    def test_sigterm_lets_slow_request_finish_and_exits_0(self):
        # A request in flight when SIGTERM arrives completes; new connections are refused;
        # the process exits 0.
        b = self.backend("slow")
        sy = self.switchyard(config([b]))
        result = {}

        def slow():
            result["r"] = request(sy.port, "GET", "/sleep?ms=1500", timeout=10)
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.4)  # the request is now at the backend
        sy.signal(signal.SIGTERM)
        sy.wait_for_line(r"draining")
        self.assertEqual(admin_get(sy, "/readyz")[0], 503)
        t.join(timeout=10)
        self.assertEqual(result["r"][0], 200)
        self.assertEqual(result["r"][2], b"slept\n")
        self.assertEqual(sy.wait(timeout=10), 0)

    def test_idle_keep_alive_connections_do_not_hold_drain(self):
        # An idle keep-alive client does not keep the process alive until drain_timeout.
        b = self.backend("one")
        sy = self.switchyard(config([b]))
        conn = http.client.HTTPConnection("127.0.0.1", sy.port, timeout=5)
        conn.request("GET", "/")
        conn.getresponse().read()
        started = time.monotonic()
        sy.signal(signal.SIGTERM)
        self.assertEqual(sy.wait(timeout=8), 0)
        self.assertLess(time.monotonic() - started, 3.0)
        conn.close()


class AdminTest(ProxyTestCase):
    def test_health_ready_metrics_clusters(self):
        b = self.backend("one", region="us-east")
        sy = self.switchyard(config([b]))
        self.assertEqual(admin_get(sy, "/healthz"), (200, "ok\n"))
        self.assertEqual(admin_get(sy, "/readyz")[0], 200)
        for _ in range(3):
            request(sy.port, "GET", "/")
        request(sy.port, "GET", "/status?code=404")
        # A request is counted once its response is written, which may finish just after the
        # client has read it, on whichever worker took its connection: poll until all four are
        # counted, to a deadline scaled for load.
        counted = ('switchyard_downstream_requests_total{code="200",listener="ingress"} 3',
                   'switchyard_downstream_requests_total{code="404",listener="ingress"} 1')
        scrape = {}

        def all_counted():
            scrape["status"], scrape["text"] = admin_get(sy, "/metrics")
            return all(line in scrape["text"] for line in counted)
        wait_for(all_counted, 2.0)
        status, text = scrape["status"], scrape["text"]
        self.assertEqual(status, 200)
        self.assertIn('switchyard_downstream_requests_total{code="200",listener="ingress"} 3',
                      text)
        self.assertIn('switchyard_downstream_requests_total{code="404",listener="ingress"} 1',
                      text)
        self.assertIn(f'switchyard_upstream_requests_total{{cluster="app",code="200",'
                      f'endpoint="{b.address}"}} 3', text)
        self.assertIn('switchyard_upstream_request_duration_seconds_count{cluster="app"} 4', text)
        self.assertIn('switchyard_downstream_connections_active{listener="ingress"}', text)
        for family in ("switchyard_upstream_connect_failures_total",
                       "switchyard_endpoint_healthy", "switchyard_endpoint_ejected",
                       "switchyard_endpoint_active_requests", "switchyard_config_reloads_total"):
            self.assertIn(family, text)
        status, doc = admin_get(sy, "/admin/clusters")
        self.assertEqual(status, 200)
        import json
        clusters = json.loads(doc)["clusters"]
        self.assertEqual(clusters[0]["name"], "app")
        self.assertEqual(clusters[0]["endpoints"][0]["address"], b.address)
        self.assertTrue(clusters[0]["endpoints"][0]["healthy"])

    def test_access_log_line_per_request(self):
        # One line per request on stdout with method, path, status, cluster, endpoint, duration.
        b = self.backend("one")
        sy = self.switchyard(config([b], top=""))
        request(sy.port, "GET", "/echo?q=1")
        m = sy.wait_for_line(r'"GET /echo\?q=1 HTTP/1.1" 200 \d+ cluster=app endpoint=(\S+) '
                             r'duration_ms=[\d.]+')
        self.assertEqual(m.group(1), b.address)
        self.assertTrue(any("/echo?q=1" in line for line in sy.stdout))

    def test_access_log_json_and_off(self):
        b = self.backend("one")
        sy = self.switchyard(config([b], top="access_log:\n  format: json\n"))
        request(sy.port, "GET", "/x\"y")
        m = sy.wait_for_line(r'^\{"time":".*"status":200.*"cluster":"app"')
        import json
        entry = json.loads(m.string)
        self.assertEqual(entry["path"], "/x%22y" if "%22" in m.string else "/x\"y")
        self.assertEqual(entry["endpoint"], b.address)


class ReloadTest(ProxyTestCase):
    def test_sighup_swaps_clusters_and_invalid_file_keeps_serving(self):
        a, b = self.backend("a"), self.backend("b")
        sy = self.switchyard(config([a]))
        self.assertEqual(request(sy.port, "GET", "/")[1]["x-backend-name"], "a")
        # keep a connection open across the reload: it must survive
        conn = http.client.HTTPConnection("127.0.0.1", sy.port, timeout=5)
        conn.request("GET", "/")
        conn.getresponse().read()

        sy.rewrite_config(config([b]))
        sy.signal(signal.SIGHUP)
        sy.wait_for_line(r"reload succeeded")
        self.assertEqual(request(sy.port, "GET", "/")[1]["x-backend-name"], "b")
        conn.request("GET", "/")
        res = conn.getresponse()
        res.read()
        self.assertEqual(res.getheader("X-Backend-Name"), "b")

        sy.rewrite_config("workers: 2\nlisteners: [oops\n")
        sy.signal(signal.SIGHUP)
        m = sy.wait_for_line(r"(switchyard-test-\S+\.yaml:\d+:\d+: .*)")
        self.assertRegex(m.group(1), r"\.yaml:\d+:\d+: ")
        sy.wait_for_line(r"reload failed")
        self.assertEqual(request(sy.port, "GET", "/")[1]["x-backend-name"], "b")
        text = admin_get(sy, "/metrics")[1]
        self.assertIn('switchyard_config_reloads_total{result="failure"} 1', text)
        self.assertIn('switchyard_config_reloads_total{result="success"} 1', text)
        conn.close()

    def test_removed_endpoint_finishes_its_slow_request_and_gets_no_more(self):
        a, b = self.backend("a"), self.backend("b")
        sy = self.switchyard(config([a, b], workers=1))
        slow = {}

        def slow_request():
            conn = http.client.HTTPConnection("127.0.0.1", sy.port, timeout=10)
            conn.request("GET", "/sleep?ms=2500")
            res = conn.getresponse()
            res.read()
            slow["result"] = (res.status, res.getheader("X-Backend-Name"))
            conn.close()

        # One worker, round robin: after a's turn comes b's, so the slow request lands on b.
        for _ in range(3):
            if request(sy.port)[1]["x-backend-name"] == "a":
                break
        t = threading.Thread(target=slow_request)
        t.start()
        deadline = time.monotonic() + 3 * time_scale()
        while time.monotonic() < deadline and '"active_requests":1' not in admin_get(
                sy, "/admin/clusters")[1].replace(" ", ""):
            time.sleep(0.02)
        sy.rewrite_config(config([a], workers=1))
        sy.signal(signal.SIGHUP)
        sy.wait_for_line(r"reload succeeded")
        reloaded = time.monotonic()
        seen = set()
        while time.monotonic() - reloaded < 2:
            seen.add(request(sy.port)[1]["x-backend-name"])
        self.assertEqual(seen, {"a"})
        t.join(10)
        self.assertEqual(slow.get("result"), (200, "b"))

    def test_endpoints_that_persist_keep_their_ejection(self):
        a, b = self.backend("a"), self.backend("b")
        request(a.port, path="/control/errors?rate=1")
        cb = ("    circuit_breaker: { consecutive_failures: 2, base_ejection: 60s,"
              " max_ejection: 60s }\n")
        sy = self.switchyard(config([a, b], workers=1, extra_cluster=cb))
        for _ in range(8):
            request(sy.port)
        c = self.backend("c")
        sy.rewrite_config(config([a, b, c], workers=1, extra_cluster=cb))
        sy.signal(signal.SIGHUP)
        sy.wait_for_line(r"reload succeeded")
        import json
        eps = {e["address"]: e for e in
               json.loads(admin_get(sy, "/admin/clusters")[1])["clusters"][0]["endpoints"]}
        self.assertEqual(eps[a.address]["breaker"], "open")
        self.assertEqual(eps[b.address]["breaker"], "closed")
        names = {request(sy.port)[1]["x-backend-name"] for _ in range(10)}
        self.assertEqual(names, {"b", "c"})
