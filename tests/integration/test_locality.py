"""The geographic layer through the real daemon (issue 7): demo backends in three regions with
injected network round trips; switchyard measures them with its health checks."""
import http.client
import json
import re

from harness import ProxyTestCase
from test_breaker import admin
from test_health import set_health, wait_for

CHECKS = ("    health_check: { path: /healthz, interval: 200ms, timeout: 1s,"
          " healthy_threshold: 2, unhealthy_threshold: 2 }\n")


def locality_config(backends, strategy="round_robin", cross_region="allow", extra_cluster="",
                    min_healthy=0.5, fallback="nearest"):
    """backends: [(Backend, region)]. Listener 'ingress' trusts 127.0.0.0/8 (region header
    believed), listener 'untrusted' trusts nobody; both are in us-east."""
    endpoints = "\n".join(f"      - {{ address: {b.address}, region: {r}, zone: {r}-{b.name} }}"
                          for b, r in backends)
    listener = ("    local_region: us-east\n"
                "    routes:\n"
                f"      - cluster: app\n        cross_region: {cross_region}\n")
    return ("workers: 2\n"
            "admin: { listen: 127.0.0.1:0 }\n"
            "access_log: { enabled: false }\n"
            "listeners:\n"
            "  - name: ingress\n    listen: 127.0.0.1:0\n    trusted_proxies: [127.0.0.0/8]\n"
            + listener +
            "  - name: untrusted\n    listen: 127.0.0.1:0\n" + listener +
            "clusters:\n  - name: app\n"
            f"    strategy: {strategy}\n"
            f"    locality: {{ client_region: \"header:X-Client-Region\","
            f" client_zone: \"header:X-Client-Zone\","
            f" min_healthy_fraction: {min_healthy}, fallback: {fallback} }}\n"
            + CHECKS + extra_cluster +
            f"    endpoints:\n{endpoints}\n")


def regions(port, n, headers=None):
    """n GETs: {backend region (or status): count}."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    counts = {}
    for _ in range(n):
        conn.request("GET", "/", headers=headers or {})
        res = conn.getresponse()
        body = res.read()
        assert res.getheader("x-switchyard-endpoint") is None  # no debug_headers: nothing leaks
        assert res.getheader("x-switchyard-region") is None
        key = res.getheader("X-Backend-Region") if res.status == 200 else f"{res.status}"
        if res.status != 200:
            counts["body"] = body.decode()
        counts[key] = counts.get(key, 0) + 1
    conn.close()
    return counts


def picks(sy, locality):
    m = re.search(r'switchyard_picks_total\{cluster="app",locality="%s"\} (\d+)' % locality,
                  admin(sy, "/metrics"))
    return int(m.group(1)) if m else 0


def region_view(sy):
    doc = json.loads(admin(sy, "/admin/clusters"))
    return {r["region"]: r for r in doc["clusters"][0]["regions"]}


class LocalityTest(ProxyTestCase):
    def three_regions(self, east=2):
        """us-east (local, no delay), eu-west (20 ms away), ap-south (60 ms away)."""
        out = [(self.backend(f"e{i}", region="us-east"), "us-east") for i in range(east)]
        out += [(self.backend(f"w{i}", region="eu-west", extra=("--rtt-ms", "20")), "eu-west")
                for i in range(2)]
        out += [(self.backend(f"s{i}", region="ap-south", extra=("--rtt-ms", "60")), "ap-south")
                for i in range(2)]
        return out

    def start(self, backends, **kwargs):
        sy = self.switchyard(locality_config(backends, **kwargs),
                             listeners=("ingress", "untrusted"))
        # Every endpoint healthy and every region's round trip measured.
        self.assertIsNotNone(wait_for(lambda: all(
            r["usable"] == r["endpoints"] and r["latency_ms"] > 0
            for r in region_view(sy).values()), 5))
        return sy

    def test_local_first_then_nearest_by_latency_then_back(self):
        backends = self.three_regions()
        sy = self.start(backends)
        view = region_view(sy)
        self.assertLess(view["eu-west"]["latency_ms"], view["ap-south"]["latency_ms"])
        self.assertEqual(view["us-east"]["nearest"], "eu-west")
        # Each worker keeps 2 idle connections to each eu-west endpoint, ready for a failover.
        self.assertIsNotNone(wait_for(lambda: re.search(
            r'switchyard_upstream_warm_connections_total\{cluster="app"\} ([4-9]|\d\d)',
            admin(sy, "/metrics")), 3))
        self.assertEqual(regions(sy.port, 40), {"us-east": 40})
        self.assertEqual(picks(sy, "local"), 40)
        for b, r in backends:
            if r == "us-east":
                set_health(b, True)
        # Both local endpoints fail their checks (2 x 200 ms): traffic goes to eu-west, the
        # nearest region by measured round trip (ap-south sorts first by name).
        self.assertIsNotNone(wait_for(lambda: regions(sy.port, 10) == {"eu-west": 10}, 3))
        self.assertEqual(regions(sy.port, 40), {"eu-west": 40})
        self.assertGreaterEqual(picks(sy, "fallback"), 50)
        for b, r in backends:
            if r == "us-east":
                set_health(b, False)
        self.assertIsNotNone(wait_for(lambda: regions(sy.port, 10) == {"us-east": 10}, 5))

    def test_partial_failure_spills_in_proportion(self):
        backends = self.three_regions(east=4)
        sy = self.start(backends)
        east = [b for b, r in backends if r == "us-east"]
        set_health(east[0], True)  # 3 of 4 usable: above min_healthy_fraction, nothing spills
        self.assertIsNotNone(wait_for(lambda: region_view(sy)["us-east"]["usable"] == 3, 3))
        self.assertEqual(regions(sy.port, 60), {"us-east": 60})
        set_health(east[1], True)
        set_health(east[2], True)  # 1 of 4 usable: deficit (0.5 - 0.25) / 0.5 = half spills
        self.assertIsNotNone(wait_for(lambda: region_view(sy)["us-east"]["usable"] == 1, 3))
        self.assertAlmostEqual(region_view(sy)["us-east"]["spill"], 0.5, places=6)
        counts = regions(sy.port, 400)
        self.assertEqual(set(counts), {"us-east", "eu-west"})
        self.assertGreater(counts["us-east"], 140)
        self.assertGreater(counts["eu-west"], 140)
        # Recovery: the spill falls back gradually (0.05 per 100 ms), not at once.
        for b in east[:3]:
            set_health(b, False)
        self.assertIsNotNone(wait_for(lambda: region_view(sy)["us-east"]["usable"] == 4, 3))
        self.assertIsNotNone(wait_for(lambda: region_view(sy)["us-east"]["spill"] == 0, 3))
        self.assertEqual(regions(sy.port, 40), {"us-east": 40})

    def test_cross_region_deny_and_failover_only(self):
        backends = self.three_regions(east=4)
        east = [b for b, r in backends if r == "us-east"]
        sy = self.start(backends, cross_region="failover_only")
        # 3 of 4 usable (0.75 >= min_healthy_fraction 0.5): the region stays whole.
        set_health(east[0], True)
        self.assertIsNotNone(wait_for(lambda: region_view(sy)["us-east"]["usable"] == 3, 3))
        self.assertEqual(regions(sy.port, 40), {"us-east": 40})
        # 1 of 4 (0.25): the region counts as unhealthy (issue 13) and is left as a whole,
        # although an endpoint there is still usable.
        for b in east[1:3]:
            set_health(b, True)
        self.assertIsNotNone(wait_for(lambda: region_view(sy)["us-east"]["usable"] == 1, 3))
        self.assertIsNotNone(wait_for(lambda: regions(sy.port, 10) == {"eu-west": 10}, 3))
        self.assertEqual(regions(sy.port, 40), {"eu-west": 40})
        set_health(east[3], True)
        self.assertIsNotNone(wait_for(lambda: regions(sy.port, 10) == {"eu-west": 10}, 3))
        sy.stop()
        for b in east:
            set_health(b, False)
        sy = self.start(backends, cross_region="deny")
        for b in east:
            set_health(b, True)
        self.assertIsNotNone(wait_for(lambda: region_view(sy)["us-east"]["usable"] == 0, 3))
        counts = regions(sy.port, 5)
        self.assertEqual(counts["503"], 5)
        self.assertIn("denies cross-region", counts["body"])
        self.assertIn("us-east", counts["body"])

    def test_only_trusted_peers_choose_their_region(self):
        backends = self.three_regions()
        sy = self.start(backends)
        wish = {"X-Client-Region": "ap-south"}
        self.assertEqual(regions(sy.ports["untrusted"], 20, wish), {"us-east": 20})
        self.assertEqual(regions(sy.ports["ingress"], 20, wish), {"ap-south": 20})

    def test_zone_preference_inside_the_region(self):
        backends = self.three_regions()
        sy = self.start(backends)

        def names(n, headers):
            conn = http.client.HTTPConnection("127.0.0.1", sy.port, timeout=10)
            out = {}
            for _ in range(n):
                conn.request("GET", "/", headers=headers)
                res = conn.getresponse()
                res.read()
                out[res.getheader("X-Backend-Name")] = out.get(res.getheader("X-Backend-Name"), 0) + 1
            conn.close()
            return out

        self.assertEqual(names(20, {"X-Client-Zone": "us-east-e1"}), {"e1": 20})
        self.assertEqual(names(20, {"X-Client-Region": "eu-west", "X-Client-Zone": "eu-west-w0"}),
                         {"w0": 20})
        set_health(backends[1][0], True)  # e1's zone goes down: the rest of us-east
        self.assertIsNotNone(wait_for(
            lambda: names(10, {"X-Client-Zone": "us-east-e1"}) == {"e0": 10}, 3))

    def test_hashing_keeps_keys_within_the_region(self):
        backends = self.three_regions()
        sy = self.start(backends, strategy="consistent_hash",
                        extra_cluster="    hash: { key: \"header:X-Key\", seed: s }\n")

        def owners(region):
            conn = http.client.HTTPConnection("127.0.0.1", sy.port, timeout=10)
            out = {}
            for i in range(200):
                conn.request("GET", "/", headers={"X-Key": f"k{i}", "X-Client-Region": region})
                res = conn.getresponse()
                res.read()
                out[i] = (res.getheader("X-Backend-Region"), res.getheader("X-Backend-Name"))
            return out

        west = owners("eu-west")
        self.assertEqual({r for r, _ in west.values()}, {"eu-west"})
        self.assertEqual({n for _, n in west.values()}, {"w0", "w1"})
        east = owners("us-east")
        self.assertEqual({r for r, _ in east.values()}, {"us-east"})
        # Another region's trouble moves nobody here.
        set_health(backends[0][0], True)  # e0
        self.assertIsNotNone(wait_for(lambda: region_view(sy)["us-east"]["usable"] == 1, 3))
        self.assertEqual(owners("eu-west"), west)
        moved = owners("us-east")
        for i, (r, n) in east.items():
            self.assertEqual(moved[i], ("us-east", "e1"))  # e0's keys to e1, e1's stay
