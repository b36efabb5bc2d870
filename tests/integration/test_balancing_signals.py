"""Balancing that feels what the backends feel (issue 23), with real processes: peak_ewma and
resource_aware's fused score steer away from a slow endpoint the load reports do not reveal and
from one that fails fast; a hedge answers from another endpoint when the first stalls; slow
start ramps a new endpoint's share along the documented curve; success-rate,
failure-percentage and local-origin ejection; and the panic threshold."""
import http.client
import json
import re
import signal
import socket
import threading
import time

from harness import ProxyTestCase, SocketBackend, config, request
from test_breaker import admin, endpoint_info, names, set_errors, wait_until


def shares(port, n, path="/"):
    counts = {}
    for status, name in names(port, n, path):
        assert status == 200, status
        counts[name] = counts.get(name, 0) + 1
    return counts


def concurrent_shares(port, total, threads=8, path="/"):
    """total GETs from `threads` keep-alive clients at once (so that requests are in flight
    together); {backend: count} and the latencies in ms."""
    counts, latencies, lock = {}, [], threading.Lock()

    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(n):
            t0 = time.monotonic()
            conn.request("GET", path)
            res = conn.getresponse()
            res.read()
            with lock:
                name = res.getheader("X-Backend-Name")
                counts[name] = counts.get(name, 0) + 1
                latencies.append((time.monotonic() - t0) * 1000)
        conn.close()

    ts = [threading.Thread(target=client, args=(total // threads,)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    return counts, sorted(latencies)


class LatencyAwareTest(ProxyTestCase):
    def test_peak_ewma_and_fused_resource_aware_avoid_a_slow_endpoint(self):
        # Three endpoints reporting the same CPU and memory; one answers in 30 ms, the others
        # in 3 ms. Least-connections sends the slow one a share in proportion to how long it
        # holds requests; a latency-aware pick sends it far less. The seed's pick (score:
        # seed) stays selectable: it sees only the in-flight part of the score.
        fast = [self.backend(f"fast{i}", extra=["--latency-ms", "3", "--cpu", "0.5",
                                               "--mem", "0.3"]) for i in range(2)]
        slow = self.backend("slow", extra=["--latency-ms", "30", "--cpu", "0.5", "--mem", "0.3"])
        for strategy, extra, most in (("peak_ewma", "", 0.10),
                                      ("resource_aware", "", 0.10),
                                      ("resource_aware", "    resource_aware: { score: seed }\n",
                                       None)):
            sy = self.switchyard(config(fast + [slow], strategy=strategy, extra_cluster=extra,
                                        workers=1))
            counts, _ = concurrent_shares(sy.port, 600)
            share = counts.get("slow", 0) / 600
            if most is None:
                self.assertGreater(share, 0.0, (strategy, counts))
                doc = json.loads(admin(sy, "/admin/config"))
                self.assertEqual(doc["clusters"][0]["resource_aware"]["score"], "seed")
            else:
                self.assertLess(share, most, (strategy, counts))
            doc = json.loads(admin(sy, "/admin/clusters"))
            lat = {e["address"]: e["latency"]["peak_ewma_ms"]
                   for e in doc["clusters"][0]["endpoints"]}
            self.assertGreater(lat[slow.address], 20, lat)
            sy.stop()

    def test_fast_failures_count_as_slow(self):
        # An endpoint that answers 503 at once to half its requests looks fast to a latency
        # balancer that ignores errors; here each failure is a penalty sample.
        good = [self.backend(f"good{i}", extra=["--latency-ms", "5"]) for i in range(2)]
        bad = self.backend("bad", extra=["--error-rate", "0.5"])
        sy = self.switchyard(config(good + [bad], strategy="peak_ewma", workers=1,
                                    extra_cluster="    circuit_breaker: { consecutive_failures: 0 }\n"))
        counts, _ = concurrent_shares(sy.port, 400, threads=4)
        self.assertLess(counts.get("bad", 0), 40, counts)


class HedgeTest(ProxyTestCase):
    def test_a_stalled_endpoint_is_hedged_and_the_first_answer_wins(self):
        # One endpoint takes 2 s; with hedge: { delay: 50ms } every GET is answered by the other
        # within ~50 ms plus its own time, the stalled try is cancelled, and the access log says
        # which requests a hedge answered. A POST is never hedged.
        stalled = self.backend("stalled", extra=["--latency-ms", "2000"])
        quick = self.backend("quick")
        routes = "      - cluster: app\n        hedge: { delay: 50ms }\n"
        sy = self.switchyard(config([stalled, quick], routes=routes, workers=1,
                                    top="access_log: { enabled: true }\n"))
        t0 = time.monotonic()
        got = names(sy.port, 20)
        self.assertLess(time.monotonic() - t0, 5.0)  # 20 x 2 s without hedging
        self.assertEqual({n for _, n in got}, {"quick"})
        text = admin(sy, "/metrics")
        sent = float(re.search(r'switchyard_upstream_hedges_total\{cluster="app"\} (\S+)', text)[1])
        won = float(re.search(r'switchyard_upstream_hedge_wins_total\{cluster="app"\} (\S+)',
                              text)[1])
        self.assertGreaterEqual(sent, 5)
        self.assertEqual(won, sent)
        sy.wait_for_line(r"hedge=won")
        status, _, _ = request(sy.port, "POST", "/echo", body=b"x")
        self.assertEqual(status, 200)

    def test_hedges_stay_within_the_retry_budget_and_lose_to_a_quick_first_try(self):
        # Two quick endpoints and a percentile delay: after warm-up the delay is the p95 of what
        # they answer in, few hedges go out, and those that do lose to the first try.
        a = self.backend("a", extra=["--latency-ms", "2"])
        b = self.backend("b", extra=["--latency-ms", "2"])
        routes = "      - cluster: app\n        hedge: { delay: p95, min_delay: 5ms }\n"
        sy = self.switchyard(config([a, b], routes=routes, workers=1))
        names(sy.port, 200)
        text = admin(sy, "/metrics")
        sent = float(re.search(r'switchyard_upstream_hedges_total\{cluster="app"\} (\S+)', text)[1])
        self.assertLess(sent, 30)
        doc = json.loads(admin(sy, "/admin/config"))
        self.assertEqual(doc["listeners"][0]["routes"][0]["hedge"]["delay"], "p95")


class SlowStartTest(ProxyTestCase):
    def test_a_new_endpoint_ramps_along_the_curve(self):
        # Round robin over two endpoints, a third added by a reload with slow_start window 6 s,
        # aggression 1, min_weight_percent 10: its share at t is p f / (1 - p + p f), p = 1/3,
        # f = max(0.1, t / 6 s). Measured per 1.5 s slice, within 20% (+1 point).
        backends = [self.backend(f"b{i}") for i in range(3)]
        extra = "    slow_start: { window: 6s, aggression: 1.0, min_weight_percent: 10 }\n"
        sy = self.switchyard(config(backends[:2], extra_cluster=extra, workers=1))
        sy.rewrite_config(config(backends, extra_cluster=extra, workers=1))
        sy.signal(signal.SIGHUP)
        sy.wait_for_line(r"reload succeeded")
        t0 = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", sy.port, timeout=10)
        slices = {}
        while time.monotonic() - t0 < 6.0:
            conn.request("GET", "/")
            res = conn.getresponse()
            res.read()
            k = int((time.monotonic() - t0) / 1.5)
            total, new = slices.get(k, (0, 0))
            slices[k] = (total + 1, new + (res.getheader("X-Backend-Name") == "b2"))
        conn.close()
        for k, (total, new) in sorted(slices.items()):
            if total < 200:
                continue
            mid = (k + 0.5) * 1.5
            f = max(0.1, mid / 6.0)
            want = (f / 3) / (1 - 1 / 3 + f / 3)
            got = new / total
            self.assertLess(abs(got - want), want * 0.2 + 0.01, (k, got, want, slices))
        # After the window: a full third.
        counts = shares(sy.port, 300)
        self.assertAlmostEqual(counts.get("b2", 0) / 300, 1 / 3, delta=0.05)


class RateEjectionTest(ProxyTestCase):
    def test_success_rate_and_failure_percentage_eject(self):
        # Four endpoints, the run-based breaker off: one failing 30% of requests is ejected by
        # success rate (the others fail none), one failing 95% by failure percentage.
        backends = [self.backend(f"b{i}") for i in range(4)]
        cb = ("    circuit_breaker: { consecutive_failures: 0, interval: 1s, max_ejected_fraction: 0.5,"
              " success_rate: { minimum_hosts: 3, request_volume: 30, stdev_factor: 1.0 } }\n")
        sy = self.switchyard(config(backends, extra_cluster=cb, workers=1))
        set_errors(backends[3], 0.3)

        def ejected():
            names(sy.port, 60)
            return endpoint_info(sy, backends[3].address)["ejected"]
        wait_until(ejected, 15, "the 30% endpoint ejected by success rate")
        self.assertFalse(endpoint_info(sy, backends[0].address)["ejected"])
        text = admin(sy, "/metrics")
        self.assertRegex(text, r'switchyard_outlier_ejections_detected_total\{cluster="app",'
                               r'detector="success_rate"\} [1-9]')
        sy.stop()
        set_errors(backends[3], 0)
        cb = ("    circuit_breaker: { consecutive_failures: 0, interval: 1s,"
              " failure_percentage: { threshold: 80, minimum_hosts: 3, request_volume: 20 } }\n")
        sy = self.switchyard(config(backends, extra_cluster=cb, workers=1))
        set_errors(backends[2], 0.95)

        def ejected2():
            names(sy.port, 60)
            return endpoint_info(sy, backends[2].address)["ejected"]
        wait_until(ejected2, 15, "the 95% endpoint ejected by failure percentage")
        self.assertRegex(admin(sy, "/metrics"),
                         r'switchyard_outlier_ejections_detected_total\{cluster="app",'
                         r'detector="failure_percentage"\} [1-9]')
        set_errors(backends[2], 0)

    def test_local_origin_failures_are_counted_apart(self):
        # With split_local_origin, an endpoint whose connections are reset is ejected after
        # consecutive_local_failures (3) resets, while 5xx answers of another endpoint do not
        # count toward that run (consecutive_failures is 0: off).

        class Resetter(SocketBackend):
            def handle(self, conn):
                conn.recv(4096)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

        resetter = Resetter(limit=200)
        self.addCleanup(resetter.close)
        ok = self.backend("ok")
        errs = self.backend("errs", extra=["--error-rate", "1.0"])
        cb = ("    circuit_breaker: { consecutive_failures: 0, split_local_origin: true,"
              " consecutive_local_failures: 3, max_ejected_fraction: 0.5 }\n")
        sy = self.switchyard(config([resetter, ok, errs], extra_cluster=cb, workers=1))
        for _ in range(40):
            request(sy.port, "GET", "/")
        self.assertTrue(endpoint_info(sy, resetter.address)["ejected"])
        self.assertFalse(endpoint_info(sy, errs.address)["ejected"])
        self.assertRegex(admin(sy, "/metrics"),
                         r'switchyard_outlier_ejections_detected_total\{cluster="app",'
                         r'detector="local_origin"\} 1')


class PanicTest(ProxyTestCase):
    def test_below_the_threshold_every_endpoint_takes_traffic(self):
        backends = [self.backend(f"b{i}") for i in range(3)]
        checks = ("    health_check: { path: /healthz, interval: 200ms, timeout: 500ms,"
                  " healthy_threshold: 1, unhealthy_threshold: 1 }\n    panic_threshold: 50\n")
        sy = self.switchyard(config(backends, extra_cluster=checks, workers=1))
        wait_until(lambda: len(shares(sy.port, 30)) == 3, 10, "all three healthy")
        request(backends[0].port, path="/control/health?fail=1")
        wait_until(lambda: "b0" not in shares(sy.port, 30), 10, "b0 out (2 of 3 is no panic)")
        request(backends[1].port, path="/control/health?fail=1")
        # 1 of 3 usable, below 50%: panic, all three take traffic again.
        wait_until(lambda: len(shares(sy.port, 60)) == 3, 10, "panic: all three")
        request(backends[1].port, path="/control/health?fail=0")
        wait_until(lambda: "b0" not in shares(sy.port, 60), 10, "out of panic")
        request(backends[0].port, path="/control/health?fail=0")
