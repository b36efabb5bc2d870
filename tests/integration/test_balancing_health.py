"""Issue 13, from outside: a region below min_healthy_fraction is failed over as a whole under
failover_only (and spills a share under allow); health checks survive backends that close idle
connections; series of removed endpoints leave /metrics; the admin server, on its own thread,
does not slow health checking down while a crowd hammers it."""
import re
import threading
import time
import urllib.request

from harness import ProxyTestCase, config
from test_breaker import admin
from test_health import set_health, spread, wait_for
from test_locality import locality_config, regions


class RegionHealthTest(ProxyTestCase):
    def start(self, min_healthy, cross_region):
        east = [self.backend(f"e{i}", region="us-east") for i in range(3)]
        west = self.backend("w0", region="eu-west")
        sy = self.switchyard(locality_config([(b, "us-east") for b in east] + [(west, "eu-west")],
                                             cross_region=cross_region, min_healthy=min_healthy),
                             listeners=("ingress", "untrusted"))
        self.assertIsNotNone(wait_for(lambda: regions(sy.port, 20) == {"us-east": 20}, 5))
        set_health(east[0], True)  # 1 of 3 unhealthy: 0.67 of the region usable
        self.assertIsNotNone(wait_for(
            lambda: "e0" not in spread(sy.port, 30) or "eu-west" in regions(sy.port, 30), 3))
        return east, west, sy

    def test_failover_only_leaves_a_region_below_its_threshold(self):
        # 0.67 < 0.7: the region counts as unhealthy, and failover_only moves all of it.
        _, _, sy = self.start(0.7, "failover_only")
        self.assertIsNotNone(wait_for(lambda: regions(sy.port, 30) == {"eu-west": 30}, 3))
        self.assertEqual(regions(sy.port, 100), {"eu-west": 100})

    def test_failover_only_stays_above_its_threshold(self):
        # 0.67 >= 0.5: the region is healthy; it stays, and never on the sick endpoint.
        _, _, sy = self.start(0.5, "failover_only")
        time.sleep(0.5)  # what changes would have changed by now (checks every 200 ms)
        self.assertEqual(regions(sy.port, 100), {"us-east": 100})
        self.assertNotIn("e0", spread(sy.port, 100))

    def test_allow_spills_a_share(self):
        # allow at 0.7: the deficit (0.7 - 0.67) / 0.7, about 5%, spills; most stays.
        _, _, sy = self.start(0.7, "allow")
        counts = regions(sy.port, 600)
        self.assertGreater(counts.get("eu-west", 0), 5, counts)
        self.assertGreater(counts.get("us-east", 0), 450, counts)


class IdleClosingBackendTest(ProxyTestCase):
    CHECKS_1S = ("    health_check: { path: /healthz, interval: 1s, timeout: 500ms,"
                 " healthy_threshold: 2, unhealthy_threshold: 2 }\n")

    def checks(self, sy, address, result):
        m = re.search(r'switchyard_health_checks_total\{cluster="app",endpoint="%s",'
                      r'result="%s"\} (\d+)' % (re.escape(address), result), admin(sy, "/metrics"))
        return int(m.group(1)) if m else 0

    def test_checks_survive_idle_close_and_real_failures_count_at_once(self):
        # The backend closes every idle connection 100 ms after its answer; checks run every
        # second, so each one finds its kept-alive connection closed. 30 checks, 0 failures.
        b = self.backend("b", extra=("--idle-close-ms", "100"))
        sy = self.switchyard(config([b], extra_cluster=self.CHECKS_1S))
        self.assertIsNotNone(wait_for(lambda: self.checks(sy, b.address, "pass") >= 30, 40))
        self.assertEqual(self.checks(sy, b.address, "fail"), 0)
        # A real failure still counts at once: the next check after /healthz turns 500.
        before = self.checks(sy, b.address, "pass")
        set_health(b, True)
        self.assertIsNotNone(wait_for(lambda: self.checks(sy, b.address, "fail") >= 1, 2.5))
        self.assertLessEqual(self.checks(sy, b.address, "pass"), before + 1)


class MetricHygieneTest(ProxyTestCase):
    def test_removed_endpoints_and_clusters_leave_metrics(self):
        import signal
        a, b = self.backend("a"), self.backend("b")
        sy = self.switchyard(config([a, b]))
        spread(sy.port, 10)
        text = admin(sy, "/metrics")
        self.assertIn(f'endpoint="{b.address}"', text)

        def reload(cfg):
            sy.rewrite_config(cfg)
            sy.signal(signal.SIGHUP)
            sy.wait_for_line(r"reload succeeded")
            spread(sy.port, 10)
            return admin(sy, "/metrics")

        # One endpoint of a cluster that stays: its series leave, the other's stay.
        text = reload(config([a]))
        self.assertNotIn(f'endpoint="{b.address}"', text)
        self.assertIn(f'cluster="app",endpoint="{a.address}"', text)
        # A cluster that goes: every series of it leaves.
        text = reload(config([a]).replace("name: app", "name: app2")
                      .replace("cluster: app", "cluster: app2"))
        self.assertNotIn('cluster="app"', text)
        self.assertIn('cluster="app2"', text)


class AdminOffTheControlThreadTest(ProxyTestCase):
    CHECKS = ("    health_check: { path: /healthz, interval: 200ms, timeout: 200ms,"
              " healthy_threshold: 2, unhealthy_threshold: 2 }\n")

    def test_health_checking_keeps_its_pace_under_an_admin_storm(self):
        # 200 clients hammer /metrics and /admin/clusters; a backend that starts failing its
        # checks is still out of traffic within interval x unhealthy_threshold + 1 s.
        backends = [self.backend(f"b{i}") for i in range(3)]
        many = "".join(f"      - address: 127.0.0.1:{20000 + i}\n" for i in range(40))
        sy = self.switchyard(config(backends, extra_cluster=self.CHECKS).replace(
            "    endpoints:\n", "    endpoints:\n" + many))
        self.assertIsNotNone(wait_for(lambda: len(spread(sy.port, 30)) == 3, 5))
        stop = threading.Event()
        served = [0]

        def hammer(path):
            while not stop.is_set():
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{sy.admin_port}{path}",
                                                timeout=5) as r:
                        r.read()
                        served[0] += 1
                except OSError:
                    pass
        threads = [threading.Thread(target=hammer, args=(p,), daemon=True)
                   for p in ["/metrics", "/admin/clusters"] * 100]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)  # the storm is on
            set_health(backends[1], True)
            took = wait_for(lambda: "b1" not in spread(sy.port, 30), 0.4 + 1.0)
            self.assertIsNotNone(took, "still routed to the failing backend")
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        self.assertGreater(served[0], 100)
