"""Active health checks (issue 4, first part): traffic follows /healthz."""
import http.client
import time
import urllib.request

from harness import ProxyTestCase, config, request

CHECKS = ("    health_check:\n"
          "      path: /healthz\n"
          "      interval: 200ms\n"
          "      timeout: 200ms\n"
          "      healthy_threshold: 2\n"
          "      unhealthy_threshold: 2\n")


def set_health(backend, fail):
    urllib.request.urlopen(f"http://{backend.address}/control/health?fail={int(fail)}",
                           timeout=5).read()


def spread(port, n=40):
    counts = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(n):
        conn.request("GET", "/")
        res = conn.getresponse()
        res.read()
        name = res.getheader("X-Backend-Name") if res.status == 200 else str(res.status)
        counts[name] = counts.get(name, 0) + 1
    conn.close()
    return counts


def wait_for(predicate, timeout):
    """Polls predicate every 50 ms; returns seconds taken, or None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    return None


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
