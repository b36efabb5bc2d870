"""discovery.kubernetes (issue 25): a Service's EndpointSlices through the API server.

No Kubernetes API server can be installed here, so these tests run switchyard against
fake_kube_api.FakeKubeAPI, which speaks list and watch as the API documents them (JSON
objects, resource versions, pages, bookmarks, 410 Gone as an ERROR event and as a status,
a chunked watch stream that may dribble or break) over TLS with a bearer token.
"""
import os
import shutil
import tempfile
import threading

from fake_kube_api import FakeKubeAPI, endpoint
from harness import ProxyTestCase, request, wait_for
from test_discovery import backends_on_one_port, cluster_view, discovery_config, metrics, names
from tls_certs import shared_pki as pki


class KubernetesDiscoveryTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="switchyard-k8s-")
        self.token_file = os.path.join(self.dir, "token")
        with open(self.token_file, "w") as f:
            f.write("secret-token\n")
        self.api = None

    def tearDown(self):
        super().tearDown()
        if self.api:
            self.api.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def fake_api(self, **kwargs):
        self.api = FakeKubeAPI(tls=pki().backend, **kwargs)
        return self.api

    def start(self, extra="", strategy="round_robin", extra_cluster=""):
        return self.switchyard(discovery_config(
            "      kubernetes:\n"
            "        service: app\n"
            "        namespace: default\n"
            "        port: http\n"
            f"        api_server: {self.api.url}\n"
            f"        token_file: {self.token_file}\n"
            f"        ca_file: {pki().ca}\n"
            "        timeout: 2s\n"
            f"{extra}", extra_cluster, strategy))

    def serving(self, ips, first=None, **api_args):
        """Backends x2.. on 127.0.0.2.. (one port), a fake API server whose slice app-a lists
        `first` of them (default all) on port `http`, and switchyard once it serves them."""
        port, backends = backends_on_one_port(self, [f"127.0.0.{i + 2}" for i in range(ips)])
        api = self.fake_api(**api_args)
        ports = (("http", port),)
        first = first if first is not None else len(backends)
        api.put_slice("app-a", [endpoint(f"127.0.0.{i + 2}") for i in range(first)], ports)
        sy = self.start()
        expected = {f"x{i + 2}" for i in range(first)}
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port, 20)) == expected, 5),
                             self.view(sy))
        return port, api, ports, sy

    def view(self, sy):
        return cluster_view(sy)["discovery"]

    def error_of(self, sy):
        return self.view(sy)["last_error"] or ""

    def test_list_pages_then_watch_follows_the_service(self):
        port, (b2, b3, b4) = backends_on_one_port(self, ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
        api = self.fake_api(page_size=1, watch_seconds_cap=1)
        ports = (("metrics", 9090), ("http", port))
        api.put_slice("app-a", [endpoint("127.0.0.2", zone="us-east-1a"),
                                endpoint("127.0.0.9", ready=False)], ports)
        api.put_slice("app-b", [endpoint("127.0.0.3", zone="europe-west1-b")], ports)
        api.put_slice("other-x", [endpoint("127.0.0.4")], ports, service="other")
        sy = self.start()
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port, 20)) == {"x2", "x3"}, 5),
                             self.view(sy))
        lists = api.requests_of(watch=False)
        # Two pages of one slice each (the server capped the page), the second by `continue`.
        self.assertEqual(len(lists), 2, lists)
        self.assertEqual(lists[0]["path"], "/apis/discovery.k8s.io/v1/namespaces/default/"
                                           "endpointslices")
        self.assertEqual(lists[0]["query"]["labelSelector"], "kubernetes.io/service-name=app")
        self.assertEqual(lists[0]["query"]["limit"], "500")
        self.assertIn("continue", lists[1]["query"])
        self.assertEqual(lists[0]["authorization"], "Bearer secret-token")
        watches = api.requests_of(watch=True)
        self.assertEqual(watches[0]["query"]["resourceVersion"], str(1003))
        self.assertEqual(watches[0]["query"]["allowWatchBookmarks"], "true")
        # Region from the zone; the zone as the slice says.
        view = cluster_view(sy)
        where = {e["address"]: (e["region"], e["zone"]) for e in view["endpoints"]}
        self.assertEqual(where, {f"127.0.0.2:{port}": ("us-east-1", "us-east-1a"),
                                 f"127.0.0.3:{port}": ("europe-west1", "europe-west1-b")})
        self.assertEqual(self.view(sy)["source"], "kubernetes")
        self.assertEqual(self.view(sy)["target"], "default/app")
        # Changes through the watch: an endpoint added to a slice, a slice removed, a new one.
        api.put_slice("app-a", [endpoint("127.0.0.2"), endpoint("127.0.0.4")], ports)
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port)) == {"x2", "x3", "x4"}, 5))
        api.delete_slice("app-b")
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port)) == {"x2", "x4"}, 5))
        # A bookmark moves the version on without a change; the next watch (the server ends
        # each after a second here) starts from it.
        mark = api.bookmark()
        self.assertIsNotNone(wait_for(lambda: any(
            w["query"]["resourceVersion"] == str(mark) for w in api.requests_of(watch=True)), 5),
            [w["query"]["resourceVersion"] for w in api.requests_of(watch=True)])
        api.put_slice("app-c", [endpoint("127.0.0.3")], ports)
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port)) == {"x2", "x3", "x4"}, 5))
        self.assertEqual(len(api.requests_of(watch=False)), 2, "no list again while watching")
        self.assertIsNone(self.view(sy)["last_error"])

    def test_terminating_endpoints_drain_and_serve_when_nothing_else_can(self):
        port, api, ports, sy = self.serving(2)
        # A request in flight on x3 when its pod starts terminating finishes there.
        result = {}

        def slow():
            for _ in range(10):  # round robin: one of the first two goes to x3
                status, headers, _ = request(sy.port, path="/sleep?ms=1500", timeout=10)
                if headers.get("x-backend-name") == "x3":
                    result["status"] = status
                    return

        t = threading.Thread(target=slow)
        t.start()
        self.assertIsNotNone(wait_for(
            lambda: any(e["active_requests"] > 0 and e["address"].startswith("127.0.0.3")
                        for e in cluster_view(sy)["endpoints"]), 8))
        terminating = endpoint("127.0.0.3", ready=False, serving=True, terminating=True)
        api.put_slice("app-a", [endpoint("127.0.0.2"), terminating], ports)
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port, 10)) == {"x2"}, 5))
        t.join(timeout=10)
        self.assertEqual(result.get("status"), 200)
        # Every endpoint terminating but serving: they take traffic rather than none.
        api.put_slice("app-a", [endpoint("127.0.0.2", ready=False, serving=True,
                                         terminating=True), terminating], ports)
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port)) == {"x2", "x3"}, 5))
        # Scaled to zero (the slice stays, with no endpoint in it): applied, 503 from switchyard.
        api.put_slice("app-a", [], ports)
        self.assertIsNotNone(wait_for(lambda: self.view(sy)["endpoints"] == 0, 5))
        self.assertIsNotNone(wait_for(lambda: request(sy.port)[0] == 503, 5))
        # The Service's slices all gone (deleted, or a wrong name): an empty answer keeps the set.
        api.put_slice("app-a", [endpoint("127.0.0.2")], ports)
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port, 10)) == {"x2"}, 5))
        api.delete_slice("app-a")
        self.assertIsNotNone(wait_for(lambda: "no EndpointSlices" in self.error_of(sy), 5))
        self.assertEqual(set(names(sy.port, 10)), {"x2"})

    def test_a_failing_api_server_changes_nothing(self):
        port, api, ports, sy = self.serving(2)

        def failures():
            return self.view(sy)["updates"]["failure"]

        # A broken watch (half an event, then the connection goes): the set stays, the next
        # watch starts where the last one was, and what changed meanwhile arrives.
        api.set(paused=True)
        api.put_slice("app-a", [endpoint("127.0.0.3")], ports)
        api.break_watches()
        api.set(paused=False)
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port)) == {"x3"}, 8), self.view(sy))
        self.assertGreaterEqual(failures(), 1)
        # 401 (a token the server does not take), then 500: nothing changes, both are said.
        for code, reason, now, then in ((401, "Unauthorized", {"x3"}, {"x2", "x3"}),
                                        (500, "InternalError", {"x2", "x3"}, {"x2"})):
            before = failures()
            api.set(fail=(code, reason))
            api.break_watches()
            self.assertIsNotNone(wait_for(lambda: f"HTTP {code}" in self.error_of(sy), 8),
                                 self.view(sy))
            self.assertGreater(failures(), before)
            self.assertEqual(set(names(sy.port, 10)), now)
            api.set(fail=None)
            api.put_slice("app-a", [endpoint(f"127.0.0.{n[1]}") for n in sorted(then)], ports)
            self.assertIsNotNone(wait_for(lambda: set(names(sy.port)) == then, 10))
        # The API server goes away altogether: connection refused, the set stays.
        api.close()
        self.api = None
        self.assertIsNotNone(wait_for(lambda: "connect" in self.error_of(sy), 10), self.view(sy))
        self.assertEqual(set(names(sy.port)), {"x2"})
        text = metrics(sy)
        self.assertIn('switchyard_discovery_endpoints{cluster="app",source="kubernetes"} 1', text)
        failure = [line for line in text.splitlines() if line.startswith(
            'switchyard_discovery_updates_total{cluster="app",result="failure",'
            'source="kubernetes"}')]
        self.assertEqual(len(failure), 1)
        self.assertGreaterEqual(float(failure[0].split()[-1]), 4)

    def test_a_rotated_token_is_read_again(self):
        port, api, ports, sy = self.serving(1)
        # The kubelet rotates the projected token: the server takes only the new one.
        with open(self.token_file + ".new", "w") as f:
            f.write("rotated-token")
        os.rename(self.token_file + ".new", self.token_file)
        api.set(token="rotated-token")
        api.break_watches()
        self.assertIsNotNone(wait_for(lambda: any(
            r["authorization"] == "Bearer rotated-token" for r in api.requests_of(watch=True)),
            5))
        api.put_slice("app-a", [], ports)
        self.assertIsNotNone(wait_for(lambda: self.view(sy)["endpoints"] == 0, 5))

    def test_410_gone_lists_again(self):
        port, api, ports, sy = self.serving(3, first=1)
        for gone_as_status, ip, name in ((False, "127.0.0.3", "x3"), (True, "127.0.0.4", "x4")):
            lists = len(api.requests_of(watch=False))
            # Changes the watch never carried, then the server forgets them (its watch cache
            # moved on): the watch from the old version gets 410, the source lists again.
            api.set(paused=True, gone_as_status=gone_as_status)
            api.put_slice("app-a", [endpoint(ip)], ports)
            api.compact()
            api.break_watches()
            api.set(paused=False)
            self.assertIsNotNone(wait_for(lambda: set(names(sy.port, 10)) == {name}, 8),
                                 self.view(sy))
            self.assertEqual(len(api.requests_of(watch=False)), lists + 1)
            self.assertIn("410", self.error_of(sy))
        # After the list, the watch is from the list's version again, and works.
        api.put_slice("app-a", [endpoint("127.0.0.2")], ports)
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port, 10)) == {"x2"}, 5))

    def test_a_slow_stream_is_read_whole(self):
        port, api, ports, sy = self.serving(2, first=1)
        # Every event in 7-byte chunks 5 ms apart (a line spread over a hundred reads).
        api.set(dribble=True)
        api.put_slice("app-a", [endpoint("127.0.0.2", zone="zone-b"), endpoint("127.0.0.3")],
                      ports)
        api.put_slice("app-b", [endpoint("127.0.0.3")], (("http", port),))
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port)) == {"x2", "x3"}, 10))
        self.assertIsNone(self.view(sy)["last_error"])
        zones = {e["address"]: e["zone"] for e in cluster_view(sy)["endpoints"]}
        self.assertEqual(zones[f"127.0.0.2:{port}"], "zone-b")

    def test_the_port_is_found_by_name_or_number_and_a_missing_one_is_an_error(self):
        port, (b2,) = backends_on_one_port(self, ["127.0.0.2"])
        api = self.fake_api()
        api.put_slice("app-a", [endpoint("127.0.0.2")], (("grpc", 9000), ("web", port)))
        sy = self.start()  # port: http, which no slice has
        self.assertIsNotNone(wait_for(lambda: "no port 'http'" in self.error_of(sy), 5),
                             self.view(sy))
        self.assertEqual(request(sy.port)[0], 503)
        sy.stop()
        self.processes.remove(sy)
        sy = self.switchyard(discovery_config(
            "      kubernetes:\n"
            "        service: app\n"
            f"        port: \"{port}\"\n"
            f"        api_server: {self.api.url}\n"
            f"        token_file: {self.token_file}\n"
            f"        ca_file: {pki().ca}\n"))
        self.assertIsNotNone(wait_for(lambda: set(names(sy.port, 5)) == {"x2"}, 5),
                             self.view(sy))
