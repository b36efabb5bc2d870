"""Retries (issue 4, second part): to another endpoint, per routes[].retries."""
import http.client
import urllib.request

from harness import ProxyTestCase, SocketBackend, config, free_port, time_scale


def statuses(port, n, method="GET", body=None):
    out = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(n):
        conn.request(method, "/", body=body)
        res = conn.getresponse()
        res.read()
        out[res.status] = out.get(res.status, 0) + 1
    conn.close()
    return out


def metrics(sy):
    with urllib.request.urlopen(f"http://127.0.0.1:{sy.admin_port}/metrics", timeout=5) as r:
        return r.read().decode()


class RetryTest(ProxyTestCase):
    def dead_and_alive(self, routes, extra_cluster=""):
        good = self.backend("good")
        cfg = config([good], routes=routes, workers=1, extra_cluster=extra_cluster).replace(
            "    endpoints:\n", f"    endpoints:\n      - address: 127.0.0.1:{free_port()}\n")
        return self.switchyard(cfg)

    def test_connect_failure_is_retried_on_another_endpoint(self):
        # Round robin over a dead and a live endpoint: with one retry on connect_failure every
        # request succeeds and every connect failure is retried, until the circuit breaker
        # ejects the dead endpoint (5 consecutive failures by default). The ejection is decided
        # on the control thread, so how many requests slip through before it lands depends on
        # the machine: send until it shows (bounded), then check that nothing more fails.
        import re
        sy = self.dead_and_alive("      - cluster: app\n"
                                 "        retries: { attempts: 1, on: [connect_failure] }\n")

        def counters():
            text = metrics(sy)
            retries = int(re.search(
                r'switchyard_upstream_retries_total\{cluster="app"\} (\d+)', text)[1])
            failures = sum(int(n) for n in re.findall(
                r'switchyard_upstream_connect_failures_total\{[^}]*\} (\d+)', text))
            ejected = 'switchyard_outlier_ejections_total{cluster="app"} 1' in text
            return retries, failures, ejected

        sent = 0
        while not counters()[2]:
            self.assertLess(sent, 200, "the dead endpoint was never ejected")
            self.assertEqual(statuses(sy.port, 5), {200: 5})
            sent += 5
        retries, failures, _ = counters()
        self.assertGreaterEqual(retries, 5)
        self.assertEqual(retries, failures)
        # Ejected (for base_ejection, 30 s): the next requests go to the live endpoint alone.
        self.assertEqual(statuses(sy.port, 30), {200: 30})
        self.assertEqual(counters(), (retries, failures, True))

    def test_without_retries_half_fail(self):
        # The control: attempts 0 turns retries off, and round robin sends half to the dead one
        # (the circuit breaker is off too, or it would eject the dead one after 5 failures).
        sy = self.dead_and_alive("      - cluster: app\n        retries: { attempts: 0 }\n",
                                 "    circuit_breaker: { consecutive_failures: 0 }\n")
        self.assertEqual(statuses(sy.port, 30), {200: 15, 502: 15})

    def test_status_retried_only_when_listed(self):
        bad = self.backend("bad", extra=("--error-rate", "1"))  # "/" always answers 500
        good = self.backend("good")
        no_breaker = "    circuit_breaker: { consecutive_failures: 0 }\n"
        listed = self.switchyard(config([bad, good], workers=1, extra_cluster=no_breaker, routes=(
            "      - cluster: app\n        retries: { attempts: 1, on: [\"500\"] }\n")))
        self.assertEqual(statuses(listed.port, 20), {200: 20})
        unlisted = self.switchyard(config([bad, good], workers=1, extra_cluster=no_breaker, routes=(
            "      - cluster: app\n        retries: { attempts: 1, on: [\"503\"] }\n")))
        self.assertEqual(statuses(unlisted.port, 20), {200: 10, 500: 10})

    def test_body_not_yet_read_is_retried_after_connect_failure(self):
        # A connect failure happens before any of the body is read: any body can go elsewhere.
        sy = self.dead_and_alive("      - cluster: app\n"
                                 "        retries: { attempts: 1, on: [connect_failure],"
                                 " max_body_bytes: 0 }\n")
        self.assertEqual(statuses(sy.port, 10, "POST", b"payload"), {200: 10})


class DropBackend(SocketBackend):
    """Reads each request whole (Content-Length or chunked body), then closes without an
    answer: the proxy sees a reset after the body was sent. Counts the requests it dropped."""

    def __init__(self, limit=100):
        self.dropped = 0
        super().__init__(limit)

    def handle(self, conn):
        data = b""
        while not self._complete(data):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        self.dropped += 1

    @staticmethod
    def _complete(data):
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            return False
        head = data[:head_end].lower()
        body = data[head_end + 4:]
        if b"transfer-encoding: chunked" in head:
            return body.endswith(b"0\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                return len(body) >= int(line.split(b":")[1])
        return True



class BodyReplayTest(ProxyTestCase):
    ROUTE = ("      - cluster: app\n"
             "        retries: {{ attempts: 1, on: [reset], max_body_bytes: {limit} }}\n")

    def setUp(self):
        super().setUp()
        self.drop = DropBackend()
        self.addCleanup(self.drop.close)
        self.good = self.backend("good")

    def start(self, limit):
        # Round robin: every other request lands on the dropper first. The circuit breaker is
        # off so that it keeps getting them.
        return self.switchyard(config(
            [self.good], workers=1, routes=self.ROUTE.format(limit=limit),
            extra_cluster="    circuit_breaker: { consecutive_failures: 0 }\n").replace(
            "    endpoints:\n", f"    endpoints:\n      - address: {self.drop.address}\n"))

    def post(self, port, body, chunked, method="PUT"):
        # PUT: idempotent, so it may be sent again (RFC 9110 §9.2.2); POST never is, below.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        if chunked:
            conn.request(method, "/echo", body=iter([body[:1000], body[1000:]]),
                         encode_chunked=True)
        else:
            conn.request(method, "/echo", body=body)
        res = conn.getresponse()
        res.read()
        conn.close()
        return res.status, res.getheader("X-Received-Length"), res.getheader("X-Received-Crc32")

    def test_small_body_is_kept_and_replayed(self):
        import zlib
        sy = self.start(65536)
        body = bytes(range(256)) * 40  # 10,240 bytes
        for chunked in (False, True):
            for _ in range(6):
                status, length, got_crc = self.post(sy.port, body, chunked)
                self.assertEqual(status, 200)
                self.assertEqual(int(length), len(body))
                self.assertEqual(int(got_crc), zlib.crc32(body))
        self.assertGreaterEqual(self.drop.dropped, 5)  # the dropper did get bodies to replay

    def test_post_reset_after_it_was_read_is_sent_once(self):
        # RFC 9110 §9.2.2: a POST that reached an endpoint is never sent again automatically,
        # even with retries on reset: the client gets 502, and across both backends every POST
        # arrived exactly once.
        self.good.stop()
        self.processes.remove(self.good)
        self.good = self.backend("good", extra=("--log-requests",))
        sy = self.start(65536)
        results = [self.post(sy.port, b"p" * 100, chunked, method="POST")[0]
                   for chunked in (False, True) for _ in range(3)]
        self.assertEqual(sorted(results), [200] * 3 + [502] * 3)
        self.assertEqual(self.drop.dropped, 3)
        import time
        deadline = time.monotonic() + 5 * time_scale()
        while time.monotonic() < deadline and \
                len([l for l in self.good.stdout if "REQUEST POST" in l]) < 3:
            time.sleep(0.02)
        self.assertEqual(len([l for l in self.good.stdout if "REQUEST POST" in l]), 3)

    def test_non_idempotent_opt_in_replays_post(self):
        # routes[].retries.non_idempotent: true treats POST like PUT.
        sy = self.switchyard(config(
            [self.good], workers=1,
            routes="      - cluster: app\n        retries: { attempts: 1, on: [reset],"
                   " non_idempotent: true }\n",
            extra_cluster="    circuit_breaker: { consecutive_failures: 0 }\n").replace(
            "    endpoints:\n", f"    endpoints:\n      - address: {self.drop.address}\n"))
        results = [self.post(sy.port, b"p" * 100, False, method="POST")[0] for _ in range(4)]
        self.assertEqual(results, [200] * 4)
        self.assertGreaterEqual(self.drop.dropped, 2)

    def test_body_over_the_limit_is_not_replayed(self):
        sy = self.start(1024)
        body = b"x" * 4096
        results = [self.post(sy.port, body, chunked)[0] for chunked in (False, True)
                   for _ in range(4)]
        self.assertEqual(sorted(results), [200] * 4 + [502] * 4)


class ConnectFailureBudgetTest(ProxyTestCase):
    def test_two_dead_of_three_under_concurrency_fail_nothing(self):
        # Two of three endpoints refuse connections (nothing listens) and the circuit breaker
        # may eject only half of them; 12 clients at once. Two thirds of the first tries fail
        # to connect, far past the retry budget's 20%: retries after a connect failure spend
        # no token (the request never reached an endpoint), so each request reaches the live
        # endpoint within its two retries (README, "Retries").
        import threading
        good = self.backend("good")
        dead = "".join(f"      - address: 127.0.0.1:{free_port()}\n" for _ in range(2))
        cfg = config([good], strategy="round_robin", workers=2,
                     routes="      - cluster: app\n"
                            "        retries: { attempts: 2, on: [connect_failure] }\n",
                     extra_cluster="    circuit_breaker: { consecutive_failures: 0 }\n")
        sy = self.switchyard(cfg.replace("    endpoints:\n", "    endpoints:\n" + dead))
        results = []

        def client():
            results.append(statuses(sy.port, 100))

        threads = [threading.Thread(target=client) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        total = {}
        for r in results:
            for k, v in r.items():
                total[k] = total.get(k, 0) + v
        self.assertEqual(total, {200: 1200})
        import re
        retries = re.search(r'switchyard_upstream_retries_total\{cluster="app"\} (\d+)', metrics(sy))
        self.assertIsNotNone(retries)
        self.assertGreater(int(retries.group(1)), 600)  # two thirds of first tries, retried
