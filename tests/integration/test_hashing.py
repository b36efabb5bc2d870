"""consistent_hash and maglev through the real daemon (issue 5)."""
import http.client

from harness import ProxyTestCase, config, request
from test_health import CHECKS, set_health, wait_for


def owners(port, keys, header="X-Key"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = {}
    for k in keys:
        conn.request("GET", "/", headers={header: k})
        res = conn.getresponse()
        res.read()
        out[k] = (res.status, res.getheader("X-Backend-Name"))
    conn.close()
    return out


class HashingTest(ProxyTestCase):
    def hashing(self, backends, strategy, extra=""):
        return config(backends, strategy=strategy, extra_cluster=(
            f"    hash: {{ key: \"header:X-Key\", seed: s1{extra} }}\n"))

    def test_two_processes_with_the_same_config_agree(self):
        backends = [self.backend(f"b{i}") for i in range(5)]
        keys = [f"user-{i}" for i in range(10000)]
        for strategy in ("consistent_hash", "maglev"):
            a = self.switchyard(self.hashing(backends, strategy))
            b = self.switchyard(self.hashing(list(reversed(backends)), strategy))
            first, second = owners(a.port, keys), owners(b.port, keys)
            self.assertEqual(first, second, strategy)
            spread = {v[1] for v in first.values()}
            self.assertEqual(len(spread), 5, strategy)
            self.assertEqual(owners(a.port, keys[:200]), {k: first[k] for k in keys[:200]})

    def test_unhealthy_endpoints_keys_move_and_come_back(self):
        backends = [self.backend(f"b{i}") for i in range(4)]
        keys = [f"user-{i}" for i in range(400)]
        for strategy in ("consistent_hash", "maglev"):
            sy = self.switchyard(config(backends, strategy=strategy, extra_cluster=(
                "    hash: { key: \"header:X-Key\", seed: s1 }\n" + CHECKS)))
            self.assertIsNotNone(wait_for(
                lambda: {v[1] for v in owners(sy.port, keys).values()} ==
                {"b0", "b1", "b2", "b3"}, 3), strategy)
            before = owners(sy.port, keys)
            set_health(backends[2], True)
            self.assertIsNotNone(wait_for(
                lambda: all(v[1] != "b2" for v in owners(sy.port, keys).values()), 3), strategy)
            during = owners(sy.port, keys)
            for k, v in before.items():
                if v[1] == "b2":
                    self.assertEqual(during[k][0], 200)
                else:  # nobody else's keys move
                    self.assertEqual(during[k], v, (strategy, k))
            set_health(backends[2], False)
            self.assertIsNotNone(wait_for(lambda: owners(sy.port, keys) == before, 3), strategy)
            sy.stop()

    def test_missing_key_random_or_reject(self):
        backends = [self.backend(f"b{i}") for i in range(3)]
        rnd = self.switchyard(self.hashing(backends, "consistent_hash"))
        names = {request(rnd.port)[1]["x-backend-name"] for _ in range(30)}
        self.assertGreater(len(names), 1)  # random, not one endpoint for every keyless request
        rej = self.switchyard(self.hashing(backends, "maglev", ", on_missing_key: reject"))
        status, _, body = request(rej.port)
        self.assertEqual(status, 400)
        self.assertIn(b"hash key", body)
        self.assertEqual(request(rej.port, headers={"X-Key": "k"})[0], 200)
