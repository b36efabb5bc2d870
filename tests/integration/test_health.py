"""Active health checks (issue 4, first part): traffic follows /healthz."""
import time
import urllib.request

from harness import ProxyTestCase, config, request, spread, wait_for

CHECKS = ("    health_check:\n"
          "      path: /healthz\n"
          "      interval: 200ms\n"
          "      timeout: 200ms\n"
          "      healthy_threshold: 2\n"
          "      unhealthy_threshold: 2\n")


def set_health(backend, fail):
    urllib.request.urlopen(f"http://{backend.address}/control/health?fail={int(fail)}",
                           timeout=5).read()


class HealthCheckTest(ProxyTestCase):
    def test_failing_endpoint_leaves_and_returns(self):
        a, b, c = self.backend("a"), self.backend("b"), self.backend("c")
        sy = self.switchyard(config([a, b, c], extra_cluster=CHECKS))
        self.assertIsNotNone(wait_for(lambda: len(spread(sy.port, 30)) == 3, 3))
        set_health(b, True)
        # unhealthy after 2 failed checks 200 ms apart: gone within 0.4 s + 1 s
        took = wait_for(lambda: "b" not in spread(sy.port, 30), 1.4)
        self.assertIsNotNone(took, "b still gets traffic")
        self.assertEqual(set(spread(sy.port, 60)), {"a", "c"})
        sy.wait_for_line(r"endpoint .* of cluster 'app' is unhealthy")
        set_health(b, False)
        took = wait_for(lambda: "b" in spread(sy.port, 30), 1.4)
        self.assertIsNotNone(took, "b did not come back")
        sy.wait_for_line(r"endpoint .* of cluster 'app' is healthy")

    def test_endpoint_failing_from_the_start_never_gets_traffic(self):
        # New endpoints are pending until their first check: the failing one is never used,
        # not even for the first requests after startup.
        good = self.backend("good")
        bad = self.backend("bad", extra=("--fail-health",))
        sy = self.switchyard(config([good, bad], extra_cluster=CHECKS))
        self.assertIsNotNone(wait_for(lambda: spread(sy.port, 1) == {"good": 1}, 3))
        self.assertEqual(spread(sy.port, 60), {"good": 60})
        with urllib.request.urlopen(f"http://127.0.0.1:{sy.admin_port}/metrics") as r:
            text = r.read().decode()
        self.assertIn(f'switchyard_endpoint_healthy{{cluster="app",endpoint="{bad.address}"}} 0',
                      text)
        self.assertIn(f'switchyard_endpoint_healthy{{cluster="app",endpoint="{good.address}"}} 1',
                      text)

    def test_no_healthy_endpoint_is_503_with_retry_after(self):
        a = self.backend("a", extra=("--fail-health",))
        sy = self.switchyard(config([a], extra_cluster=CHECKS))
        time.sleep(0.5)
        status, headers, body = request(sy.port, "GET", "/")
        self.assertEqual(status, 503)
        self.assertEqual(headers["retry-after"], "1")
        self.assertIn(b"no healthy endpoint in cluster 'app'", body)
        set_health(a, False)  # healthy again after healthy_threshold (2) passes
        self.assertIsNotNone(wait_for(lambda: request(sy.port, "GET", "/")[0] == 200, 2))


def endpoint_healthy(admin_port, address):
    import json
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/admin/clusters", timeout=5) as r:
        doc = json.load(r)
    for cluster in doc["clusters"]:
        for e in cluster["endpoints"]:
            if e["address"] == address:
                return e["healthy"]
    raise AssertionError(f"{address} not in /admin/clusters")


class PassiveConnectCheckTest(ProxyTestCase):
    # Checks alone take 10 failures x 1 s to mark an endpoint down; requests whose connect is
    # refused mark it down after passive_connect_failures of them in a row.
    SLOW_CHECKS = ("    health_check: { path: /healthz, interval: 1s, timeout: 500ms,"
                   " healthy_threshold: 1, unhealthy_threshold: 10")

    def run_killed(self, passive):
        a, b = self.backend("a"), self.backend("b")
        extra = self.SLOW_CHECKS + (
            "" if passive is None else f", passive_connect_failures: {passive}") + " }\n"
        sy = self.switchyard(config([a, b], extra_cluster=extra))
        self.assertIsNotNone(wait_for(lambda: len(spread(sy.port, 20)) == 2, 5))
        port = b.port
        b.stop()
        started = time.monotonic()
        counts = spread(sy.port, 40)  # round robin: half draw b; each retried on a
        self.assertEqual(counts, {"a": 40}, "a request failed")
        return sy, b, port, time.monotonic() - started

    def test_refused_connects_mark_the_endpoint_down_and_checks_bring_it_back(self):
        sy, b, port, took = self.run_killed(None)  # the default: 3
        self.assertFalse(endpoint_healthy(sy.admin_port, b.address))
        self.assertLess(took, 5.0)  # long before 10 failed checks
        sy.wait_for_line(r"endpoint 127\.0\.0\.1:%d of cluster 'app' is unhealthy \(3 connects"
                         % port)
        back = self.backend("b2", listen=f"127.0.0.1:{port}")
        self.assertIsNotNone(wait_for(lambda: "b2" in spread(sy.port, 10), 5),
                             "the checks did not bring it back")
        back.stop()

    def test_passive_check_off(self):
        sy, b, _, _ = self.run_killed(0)
        # Still healthy as far as the checks know (they need 10 s to say otherwise).
        self.assertTrue(endpoint_healthy(sy.admin_port, b.address))
