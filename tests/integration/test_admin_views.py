"""The admin views an operator reads (issue 15): /admin/config, /admin/explain checked against
what real requests get, POST /admin/reload, and the status page's HTML."""
import http.client
import json
import re
import urllib.parse

from harness import ProxyTestCase, config, request
from test_health import CHECKS, set_health, wait_for
from test_locality import locality_config


def admin(sy, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", sy.admin_port, timeout=10)
    try:
        conn.request(method, path, body=body)
        res = conn.getresponse()
        return res.status, res.getheader("Content-Type"), res.read().decode()
    finally:
        conn.close()


def explain(sy, **params):
    headers = params.pop("headers", [])
    query = urllib.parse.urlencode(list(params.items()) + [("header", h) for h in headers])
    status, ctype, body = admin(sy, "GET", "/admin/explain?" + query)
    assert ctype == "application/json", ctype
    return status, json.loads(body)


class AdminConfigTest(ProxyTestCase):
    def test_effective_config_with_defaults_and_the_seed_redacted(self):
        b = self.backend("one")
        sy = self.switchyard(config([b], strategy="maglev", extra_cluster=(
            "    hash: { key: \"header:X-Key\", seed: top-secret-seed }\n")))
        status, ctype, body = admin(sy, "GET", "/admin/config")
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "application/json")
        self.assertNotIn("top-secret-seed", body)
        doc = json.loads(body)
        cluster = doc["clusters"][0]
        self.assertEqual(cluster["strategy"], "maglev")
        self.assertEqual(cluster["hash"]["seed"], "<redacted>")
        self.assertEqual(cluster["hash"]["key"], "header:X-Key")
        self.assertNotIn("resource_aware", cluster)  # another policy's block is not shown
        # Defaults are filled in, in the YAML's units.
        self.assertEqual(cluster["circuit_breaker"]["base_ejection"], "30s")
        self.assertEqual(cluster["endpoints"][0]["address"], b.address)
        listener = doc["listeners"][0]
        self.assertEqual(listener["limits"]["max_request_header_bytes"], 16384)
        self.assertEqual(listener["routes"][0]["cluster"], "app")
        self.assertEqual(listener["routes"][0]["timeout"], "15s")
        self.assertEqual(doc["version"], 1)


class ExplainTest(ProxyTestCase):
    def test_hashing_explain_names_the_endpoint_real_requests_get(self):
        backends = [self.backend(f"b{i}") for i in range(5)]
        names = {b.address: b.name for b in backends}
        keys = [f"user-{i}" for i in range(60)]
        for strategy in ("consistent_hash", "maglev"):
            sy = self.switchyard(config(backends, strategy=strategy, extra_cluster=(
                "    hash: { key: \"header:X-Key\", seed: s1 }\n")))
            conn = http.client.HTTPConnection("127.0.0.1", sy.port, timeout=10)
            spread = set()
            for k in keys:
                status, doc = explain(sy, path="/", headers=[f"X-Key:{k}"])
                self.assertEqual(status, 200, doc)
                self.assertEqual(doc["strategy"], strategy)
                self.assertEqual(doc["hash_key"], {"source": "header:X-Key", "present": True,
                                                   "value": k})
                # Candidates: every endpoint once, the pick first.
                order = [c["address"] for c in doc["candidates"]]
                self.assertEqual(sorted(order), sorted(names))
                self.assertEqual(order[0], doc["endpoint"]["address"])
                conn.request("GET", "/", headers={"X-Key": k})
                res = conn.getresponse()
                res.read()
                self.assertEqual(res.getheader("X-Backend-Name"),
                                 names[doc["endpoint"]["address"]], (strategy, k))
                spread.add(doc["endpoint"]["address"])
            conn.close()
            self.assertGreater(len(spread), 2, strategy)
            sy.stop()

    def test_hashing_explain_follows_health(self):
        backends = [self.backend(f"b{i}") for i in range(3)]
        names = {b.address: b.name for b in backends}
        sy = self.switchyard(config(backends, strategy="consistent_hash",
                                    extra_cluster=CHECKS + (
                                        "    hash: { key: \"header:X-Key\", seed: s1 }\n")))
        # Until their first checks pass, endpoints are not usable.
        self.assertIsNotNone(wait_for(lambda: len(explain(
            sy, path="/", headers=["X-Key:alice"])[1]["candidates"]) == 3, 10))
        _, doc = explain(sy, path="/", headers=["X-Key:alice"])
        first = doc["endpoint"]["address"]
        owner = next(b for b in backends if b.address == first)
        set_health(owner, True)

        def moved():
            return explain(sy, path="/", headers=["X-Key:alice"])[1]["endpoint"]["address"] != first
        self.assertIsNotNone(wait_for(moved, 10))
        _, doc = explain(sy, path="/", headers=["X-Key:alice"])
        self.assertNotIn(first, [c["address"] for c in doc["candidates"]])
        _, headers, _ = request(sy.port, headers={"X-Key": "alice"})
        self.assertEqual(headers["x-backend-name"], names[doc["endpoint"]["address"]])

    def test_locality_explain_matches_the_region_real_requests_get(self):
        east = [self.backend(f"e{i}", region="us-east") for i in range(2)]
        west = [self.backend(f"w{i}", region="eu-west") for i in range(2)]
        sy = self.switchyard(locality_config([(b, "us-east") for b in east] +
                                             [(b, "eu-west") for b in west]),
                             listeners=("ingress", "untrusted"))
        # Until their first checks pass, endpoints are not usable (and explain says 503).
        def ready():
            d = explain(sy, listener="ingress", path="/", headers=["X-Client-Region:eu-west"])[1]
            return d["endpoint"] is not None and d["locality"]["region_healthy"]
        self.assertIsNotNone(wait_for(ready, 10))
        # A trusted proxy's header is believed: eu-west, local.
        status, doc = explain(sy, listener="ingress", path="/", headers=["X-Client-Region:eu-west"])
        self.assertEqual(status, 200, doc)
        loc = doc["locality"]
        self.assertEqual(loc["client_region"], "eu-west")
        self.assertIn("trusted proxy", loc["region_source"])
        self.assertEqual(loc["decision"], "local", doc)
        self.assertEqual(doc["endpoint"]["region"], "eu-west")
        for _ in range(10):
            _, headers, _ = request(sy.ports["ingress"], headers={"X-Client-Region": "eu-west"})
            self.assertEqual(headers["x-backend-region"], "eu-west")
        # The untrusted listener ignores the header: the listener's region, and says why.
        _, doc = explain(sy, listener="untrusted", path="/", headers=["X-Client-Region:eu-west"])
        self.assertEqual(doc["locality"]["client_region"], "us-east")
        self.assertIn("ignored", doc["locality"]["region_source"])
        self.assertEqual(doc["endpoint"]["region"], "us-east")
        _, headers, _ = request(sy.ports["untrusted"], headers={"X-Client-Region": "eu-west"})
        self.assertEqual(headers["x-backend-region"], "us-east")
        # eu-west loses every endpoint: the decision becomes fallback to us-east, for both.
        for b in west:
            set_health(b, True)

        def spilled():
            d = explain(sy, listener="ingress", path="/", headers=["X-Client-Region:eu-west"])[1]
            return d["locality"]["decision"] == "fallback" and d["locality"]["spill_fraction"] == 1

        self.assertIsNotNone(wait_for(spilled, 10))
        _, doc = explain(sy, listener="ingress", path="/", headers=["X-Client-Region:eu-west"])
        self.assertEqual(doc["locality"]["spill_fraction"], 1.0)
        self.assertFalse(doc["locality"]["region_healthy"])
        self.assertEqual(doc["endpoint"]["region"], "us-east")
        for _ in range(10):
            _, headers, _ = request(sy.ports["ingress"], headers={"X-Client-Region": "eu-west"})
            self.assertEqual(headers["x-backend-region"], "us-east")

    def test_explain_answers_like_the_proxy_would_and_rejects_bad_queries(self):
        b = self.backend("one")
        sy = self.switchyard(config([b], routes=(
            "      - match: { path_prefix: /api/ }\n        cluster: app\n")))
        _, doc = explain(sy, path="/api/x")
        self.assertEqual(doc["route"]["path_prefix"], "/api/")
        self.assertEqual(doc["endpoint"]["address"], b.address)
        _, doc = explain(sy, path="/other")
        self.assertEqual(doc["answer"], {"status": 404, "reason": "no route for this request"})
        self.assertEqual(explain(sy, path="/", listener="nope")[0], 400)
        self.assertEqual(explain(sy, path="/", client="not-an-ip")[0], 400)
        self.assertEqual(explain(sy, path="/", bogus="1")[0], 400)
        self.assertEqual(explain(sy, path="no-slash")[0], 400)
        status, _, _ = admin(sy, "GET", "/admin/explain?path=%zz")
        self.assertEqual(status, 400)


class AdminReloadTest(ProxyTestCase):
    def test_post_reload_answers_with_the_outcome(self):
        a, b = self.backend("a"), self.backend("b")
        sy = self.switchyard(config([a]))
        self.assertEqual(request(sy.port)[1]["x-backend-name"], "a")
        sy.rewrite_config(config([b]))
        status, ctype, body = admin(sy, "POST", "/admin/reload")
        self.assertEqual((status, ctype), (200, "application/json"), body)
        doc = json.loads(body)
        self.assertEqual(doc, {"result": "success", "version": 2, "errors": []})
        self.assertEqual(request(sy.port)[1]["x-backend-name"], "b")

        sy.rewrite_config(config([b]).replace("strategy: round_robin", "strategy: nope"))
        status, _, body = admin(sy, "POST", "/admin/reload")
        self.assertEqual(status, 422, body)
        doc = json.loads(body)
        self.assertEqual(doc["result"], "failure")
        self.assertEqual(doc["version"], 2)
        self.assertEqual(len(doc["errors"]), 1)
        self.assertRegex(doc["errors"][0], r"switchyard-test-\S+\.yaml:\d+:\d+: "
                                           r"clusters\[0\]\.strategy: ")
        self.assertEqual(request(sy.port)[1]["x-backend-name"], "b")  # still serving
        self.assertEqual(admin(sy, "GET", "/admin/reload")[0], 405)
        metrics = admin(sy, "GET", "/metrics")[2]
        self.assertIn('switchyard_config_reloads_total{result="success"} 1', metrics)
        self.assertIn('switchyard_config_reloads_total{result="failure"} 1', metrics)


class StatusPageTest(ProxyTestCase):
    def test_status_page_is_one_self_contained_html_file(self):
        b = self.backend("one")
        sy = self.switchyard(config([b]))
        status, ctype, body = admin(sy, "GET", "/")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/html"), ctype)
        self.assertIn("<title>switchyard status</title>", body)
        # No external assets: no src/href to another origin, no @import.
        self.assertIsNone(re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", body))
        self.assertNotIn("@import", body)
        self.assertIn('fetch("/admin/clusters"', body)
