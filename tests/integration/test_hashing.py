"""consistent_hash and maglev through the real daemon (issue 5)."""
import http.client

from harness import ProxyTestCase, config, request


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
        keys = [f"user-{i}" for i in range(2000)]
        for strategy in ("consistent_hash", "maglev"):
            a = self.switchyard(self.hashing(backends, strategy))
            b = self.switchyard(self.hashing(list(reversed(backends)), strategy))
            first, second = owners(a.port, keys), owners(b.port, keys)
            self.assertEqual(first, second, strategy)
            spread = {v[1] for v in first.values()}
            self.assertEqual(len(spread), 5, strategy)
            self.assertEqual(owners(a.port, keys[:200]), {k: first[k] for k in keys[:200]})

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
