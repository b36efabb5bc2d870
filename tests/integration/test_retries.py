"""Retries (issue 4, second part): to another endpoint, per routes[].retries."""
import http.client
import urllib.request

from harness import ProxyTestCase, config, free_port


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
    def dead_and_alive(self, routes):
        good = self.backend("good")
        cfg = config([good], routes=routes, workers=1).replace(
            "    endpoints:\n", f"    endpoints:\n      - address: 127.0.0.1:{free_port()}\n")
        return self.switchyard(cfg)

    def test_connect_failure_is_retried_on_another_endpoint(self):
        # Round robin over a dead and a live endpoint: with one retry on connect_failure every
        # request succeeds; the retries are counted.
        sy = self.dead_and_alive("      - cluster: app\n"
                                 "        retries: { attempts: 1, on: [connect_failure] }\n")
        self.assertEqual(statuses(sy.port, 30), {200: 30})
        # Every connect failure was retried (round robin's cursor is shared with retries, so the
        # dead endpoint keeps taking first tries until something ejects it).
        import re
        text = metrics(sy)
        retries = int(re.search(r'switchyard_upstream_retries_total\{cluster="app"\} (\d+)', text)[1])
        failures = sum(int(n) for n in re.findall(
            r'switchyard_upstream_connect_failures_total\{[^}]*\} (\d+)', text))
        self.assertGreaterEqual(retries, 15)
        self.assertEqual(retries, failures)

    def test_without_retries_half_fail(self):
        # The control: attempts 0 turns retries off, and round robin sends half to the dead one.
        sy = self.dead_and_alive("      - cluster: app\n        retries: { attempts: 0 }\n")
        self.assertEqual(statuses(sy.port, 30), {200: 15, 502: 15})

    def test_status_retried_only_when_listed(self):
        bad = self.backend("bad", extra=("--error-rate", "1"))  # "/" always answers 500
        good = self.backend("good")
        listed = self.switchyard(config([bad, good], workers=1, routes=(
            "      - cluster: app\n        retries: { attempts: 1, on: [\"500\"] }\n")))
        self.assertEqual(statuses(listed.port, 20), {200: 20})
        unlisted = self.switchyard(config([bad, good], workers=1, routes=(
            "      - cluster: app\n        retries: { attempts: 1, on: [\"503\"] }\n")))
        self.assertEqual(statuses(unlisted.port, 20), {200: 10, 500: 10})

    def test_request_with_body_is_not_replayed(self):
        sy = self.dead_and_alive("      - cluster: app\n"
                                 "        retries: { attempts: 1, on: [connect_failure] }\n")
        self.assertEqual(statuses(sy.port, 10, "POST", b"payload"), {200: 5, 502: 5})
