"""The proxy core end to end: the real switchyard in front of real demo backends."""
import hashlib
import http.client
import time
import zlib

from harness import ProxyTestCase, SocketBackend, config, free_port, raw_exchange, request


def pattern(n):
    """The demo backend's /bytes pattern: byte i is 'a' + i % 26."""
    unit = bytes(range(ord("a"), ord("a") + 26))
    return (unit * (n // 26 + 1))[:n]


class ForwardingTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.b = self.backend("one")
        self.sy = self.switchyard(config([self.b]))

    def test_methods_path_query_and_host_arrive_intact(self):
        # GET/POST/PUT/DELETE reach the backend with method, path, query and Host unchanged.
        for method in ("GET", "POST", "PUT", "DELETE"):
            status, headers, _ = request(self.sy.port, method, "/echo/a/b?x=1&y=%20z",
                                         body=b"" if method != "GET" else None,
                                         headers={"Host": "svc.example:8443"})
            self.assertEqual(status, 200, method)
            self.assertEqual(headers["x-echo-method"], method)
            self.assertEqual(headers["x-echo-target"], "/echo/a/b?x=1&y=%20z")
            self.assertEqual(headers["x-echo-host"], "svc.example:8443")

    def test_request_bodies_arrive_with_same_hash_both_ways(self):
        # 0 B, 1 KiB and 8 MiB bodies, with Content-Length and chunked, survive both directions.
        for size in (0, 1024, 8 * 1024 * 1024):
            payload = bytes((i * 7 + 3) % 256 for i in range(min(size, 4096))) * (size // 4096 or 1)
            payload = payload[:size]
            for chunked in (False, True):
                conn = http.client.HTTPConnection("127.0.0.1", self.sy.port, timeout=30)
                if chunked:
                    pieces = (payload[i:i + 65536] for i in range(0, len(payload), 65536))
                    conn.request("POST", "/echo", body=pieces, encode_chunked=True,
                                 headers={"Transfer-Encoding": "chunked"})
                else:
                    conn.request("POST", "/echo", body=payload)
                res = conn.getresponse()
                echoed = res.read()
                conn.close()
                label = f"{size} bytes, chunked={chunked}"
                self.assertEqual(res.status, 200, label)
                self.assertEqual(int(res.getheader("X-Received-Length")), size, label)
                self.assertEqual(int(res.getheader("X-Received-Crc32")), zlib.crc32(payload),
                                 label)
                self.assertEqual(res.getheader("X-Received-Chunked"), "1" if chunked else "0",
                                 label)
                self.assertEqual(hashlib.sha256(echoed).hexdigest(),
                                 hashlib.sha256(payload).hexdigest(), label)

    def test_response_bodies_stream_with_length_and_chunked(self):
        # 8 MiB responses (Content-Length and chunked from the backend) arrive byte-exact.
        for size in (0, 1024, 8 * 1024 * 1024):
            for chunked in ("0", "1"):
                status, headers, body = request(self.sy.port, "GET",
                                                f"/bytes?n={size}&chunked={chunked}", timeout=30)
                self.assertEqual(status, 200)
                self.assertEqual(hashlib.sha256(body).hexdigest(),
                                 hashlib.sha256(pattern(size)).hexdigest(), (size, chunked))

    def test_hundred_requests_on_one_keep_alive_connection(self):
        # 100 sequential requests reuse one client connection (the socket is never replaced).
        conn = http.client.HTTPConnection("127.0.0.1", self.sy.port, timeout=10)
        conn.connect()
        sock = conn.sock
        for i in range(100):
            conn.request("GET", f"/echo?i={i}")
            res = conn.getresponse()
            res.read()
            self.assertEqual(res.status, 200)
            self.assertIs(conn.sock, sock, f"connection replaced at request {i}")
        conn.close()

    def test_forwarding_headers_and_hop_by_hop_stripped(self):
        # X-Forwarded-For is replaced for an untrusted peer; hop-by-hop headers and the ones
        # Connection names do not reach the backend.
        status, headers, _ = request(self.sy.port, "GET", "/echo", headers={
            "X-Forwarded-For": "6.6.6.6", "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1", "Keep-Alive": "timeout=5", "TE": "trailers",
            "Upgrade": "h2c", "X-Kept": "yes"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["x-echo-xff"], "127.0.0.1")
        self.assertEqual(headers["x-echo-xfp"], "http")
        names = headers["x-echo-headers"].lower().split(",")
        for hop in ("connection", "x-secret-hop", "keep-alive", "te", "upgrade"):
            self.assertNotIn(hop, names)
        self.assertIn("x-kept", names)

    def test_load_report_header_never_reaches_client(self):
        # endpoint-load-metrics is consumed by the proxy.
        b = self.backend("reporting", extra=("--cpu", "0.5", "--mem", "0.2"))
        direct = request(b.port, "GET", "/")[1]
        self.assertIn("endpoint-load-metrics", direct)  # the backend does send it
        sy = self.switchyard(config([b]))
        status, headers, _ = request(sy.port, "GET", "/")
        self.assertEqual(status, 200)
        self.assertNotIn("endpoint-load-metrics", headers)

    def test_head_has_no_body_and_keeps_connection(self):
        # A HEAD response carries the length but no body, and the connection stays usable.
        conn = http.client.HTTPConnection("127.0.0.1", self.sy.port, timeout=5)
        conn.request("HEAD", "/bytes?n=1000")
        res = conn.getresponse()
        self.assertEqual(res.read(), b"")
        self.assertEqual(res.getheader("Content-Length"), "1000")
        conn.request("GET", "/bytes?n=10")
        res = conn.getresponse()
        self.assertEqual(res.read(), b"abcdefghij")
        conn.close()

    def test_pipelined_requests_answered_in_order(self):
        # Three requests in one write come back as three responses, in order.
        data = b"".join(f"GET /echo?n={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(3))
        data = data[:-4] + b"\r\nConnection: close\r\n\r\n"
        out = raw_exchange(self.sy.port, data)
        self.assertEqual(out.count(b"HTTP/1.1 200 OK"), 3)
        positions = [out.find(f"X-Echo-Target: /echo?n={i}".encode()) for i in range(3)]
        self.assertTrue(all(p >= 0 for p in positions), out[:500])
        self.assertEqual(positions, sorted(positions))

    def test_http10_client(self):
        # An HTTP/1.0 client without Host gets an HTTP/1.0 answer and the connection closes.
        out = raw_exchange(self.sy.port, b"GET /bytes?n=5&chunked=1 HTTP/1.0\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.0 200"), out[:100])
        self.assertTrue(out.endswith(b"\r\n\r\nabcde"), out[-100:])
        self.assertNotIn(b"chunked", out.lower())

    def test_malformed_request_gets_400_and_close(self):
        out = raw_exchange(self.sy.port, b"GET / HTTP/1.1\r\nHost x\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400"), out[:100])
        self.assertIn(b"malformed request", out)

    def test_missing_host_on_http11_is_400(self):
        out = raw_exchange(self.sy.port, b"GET / HTTP/1.1\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400"), out[:100])

    def test_oversized_header_is_431(self):
        out = raw_exchange(self.sy.port,
                           b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 431"), out[:100])

    def test_expect_continue(self):
        # The proxy answers 100 Continue itself, then streams the body through.
        out = raw_exchange(self.sy.port, b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n"
                           b"\r\nhello")
        self.assertTrue(out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"), out[:200])
        self.assertTrue(out.endswith(b"hello"))


class ErrorsTest(ProxyTestCase):
    def test_dead_backend_gives_502_fast(self):
        # Connection refused -> 502 with a plain-text reason, in well under 2 s.
        port = free_port()
        cfg = config([]).replace("    endpoints:\n", f"    endpoints:\n      - address: 127.0.0.1:{port}")
        sy = self.switchyard(cfg)
        started = time.monotonic()
        status, headers, body = request(sy.port, "GET", "/")
        elapsed = time.monotonic() - started
        self.assertEqual(status, 502)
        self.assertIn(b"upstream", body)
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        self.assertLess(elapsed, 2.0)

    def test_route_timeout_gives_504(self):
        b = self.backend("slow")
        routes = "      - cluster: app\n        timeout: 300ms\n"
        sy = self.switchyard(config([b], routes=routes))
        started = time.monotonic()
        status, _, body = request(sy.port, "GET", "/sleep?ms=3000")
        elapsed = time.monotonic() - started
        self.assertEqual(status, 504)
        self.assertIn(b"timeout", body)
        self.assertLess(elapsed, 2.0)
        self.assertGreaterEqual(elapsed, 0.25)

    def test_no_route_gives_404(self):
        b = self.backend("one")
        routes = "      - match: { path_prefix: /only/ }\n        cluster: app\n"
        sy = self.switchyard(config([b], routes=routes))
        self.assertEqual(request(sy.port, "GET", "/elsewhere")[0], 404)
        self.assertEqual(request(sy.port, "GET", "/only/x")[0], 200)

    def test_backend_5xx_is_passed_through(self):
        b = self.backend("one")
        sy = self.switchyard(config([b]))
        status, _, body = request(sy.port, "GET", "/status?code=503")
        self.assertEqual(status, 503)
        self.assertIn(b"from one", body)


class RoutingTest(ProxyTestCase):
    def test_host_and_path_prefix_first_match_wins(self):
        a, b, c = self.backend("a"), self.backend("b"), self.backend("c")
        cfg = (
            "workers: 1\nadmin:\n  listen: 127.0.0.1:0\naccess_log:\n  enabled: false\n"
            "listeners:\n  - name: ingress\n    listen: 127.0.0.1:0\n    routes:\n"
            "      - match: { host: api.example.com, path_prefix: /v1/ }\n        cluster: a\n"
            "      - match: { host: '*.example.com' }\n        cluster: b\n"
            "      - cluster: c\n"
            "clusters:\n"
            f"  - name: a\n    endpoints: [{{ address: {a.address} }}]\n"
            f"  - name: b\n    endpoints: [{{ address: {b.address} }}]\n"
            f"  - name: c\n    endpoints: [{{ address: {c.address} }}]\n")
        sy = self.switchyard(cfg)

        def who(path, host):
            return request(sy.port, "GET", path, headers={"Host": host})[1]["x-backend-name"]
        self.assertEqual(who("/v1/users", "API.example.com:8080"), "a")
        self.assertEqual(who("/v2/users", "api.example.com"), "b")
        self.assertEqual(who("/v1/users", "www.example.com"), "b")
        self.assertEqual(who("/v1/users", "example.com"), "c")
        self.assertEqual(who("/", "other.org"), "c")
        # absolute-form target: the authority in the target decides, not Host
        out = b"GET http://api.example.com/v1/x HTTP/1.1\r\nHost: other.org\r\nConnection: close\r\n\r\n"
        from harness import raw_exchange as rx
        self.assertIn(b"X-Backend-Name: a", rx(sy.port, out))


class BalancingTest(ProxyTestCase):
    def test_round_robin_spreads_evenly(self):
        # 3,000 requests over 3 backends: each gets 1,000 +- 5%.
        backends = [self.backend(n) for n in ("a", "b", "c")]
        sy = self.switchyard(config(backends))
        counts = {"a": 0, "b": 0, "c": 0}
        conns = [http.client.HTTPConnection("127.0.0.1", sy.port, timeout=10) for _ in range(4)]
        for i in range(3000):
            conn = conns[i % len(conns)]
            conn.request("GET", "/")
            res = conn.getresponse()
            res.read()
            self.assertEqual(res.status, 200)
            counts[res.getheader("X-Backend-Name")] += 1
        for conn in conns:
            conn.close()
        for name, n in counts.items():
            self.assertGreaterEqual(n, 950, counts)
            self.assertLessEqual(n, 1050, counts)

    def test_weights_are_honoured(self):
        # weights 3:1 under each strategy give a 3:1 split (+-15% for the random ones).
        a, b = self.backend("a"), self.backend("b")
        for strategy in ("round_robin", "random", "least_request"):
            cfg = config([a, b], strategy=strategy).replace(
                f"address: {a.address}", f"address: {a.address}\n        weight: 3")
            sy = self.switchyard(cfg)
            counts = {"a": 0, "b": 0}
            conn = http.client.HTTPConnection("127.0.0.1", sy.port, timeout=10)
            for _ in range(800):
                conn.request("GET", "/")
                res = conn.getresponse()
                res.read()
                counts[res.getheader("X-Backend-Name")] += 1
            conn.close()
            sy.stop()
            share = counts["a"] / 800
            self.assertAlmostEqual(share, 0.75, delta=0.75 * 0.15, msg=(strategy, counts))


class RawBackend(SocketBackend):
    """A one-shot-per-connection HTTP/1.0 backend: answers every request with `reply`, then
    closes (close-delimited body). At most `limit` connections; each request head read (up to
    its blank line, with whatever came in the same reads) is kept in `heads`."""

    def __init__(self, reply, limit=20):
        self.reply = reply
        self.heads = []
        super().__init__(limit)

    def handle(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        self.heads.append(data)
        conn.sendall(self.reply)


class Http10BackendTest(ProxyTestCase):
    def test_close_delimited_response_is_chunked_for_11_and_closed_for_10(self):
        # An HTTP/1.0 endpoint without Content-Length ends its body by closing: a 1.1 client
        # gets it chunked on a connection that stays open; a 1.0 client gets it close-delimited.
        raw = RawBackend(b"HTTP/1.0 200 OK\r\nX-Old: yes\r\n\r\nhello, world")
        self.addCleanup(raw.close)
        sy = self.switchyard(config([raw]))
        conn = http.client.HTTPConnection("127.0.0.1", sy.port, timeout=5)
        for _ in range(2):  # twice on one client connection: keep-alive survives
            conn.request("GET", "/")
            res = conn.getresponse()
            self.assertEqual(res.read(), b"hello, world")
            self.assertEqual(res.getheader("Transfer-Encoding"), "chunked")
            self.assertEqual(res.getheader("X-Old"), "yes")
        conn.close()
        out = raw_exchange(sy.port, b"GET / HTTP/1.0\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.0 200"), out)
        self.assertTrue(out.endswith(b"\r\n\r\nhello, world"), out)
        self.assertNotIn(b"chunked", out.lower())


class DripBackend(RawBackend):
    """Answers with a chunked body of `chunks` one-byte chunks, `gap` seconds apart."""

    def __init__(self, chunks, gap, limit=10):
        self.chunks, self.gap = chunks, gap
        super().__init__(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", limit)

    def handle(self, conn):
        super().handle(conn)  # reads the head, sends the response head
        conn.settimeout(10)
        for _ in range(self.chunks):
            time.sleep(self.gap)
            conn.sendall(b"1\r\nx\r\n")
        conn.sendall(b"0\r\n\r\n")


class RouteTimeoutTest(ProxyTestCase):
    def drip(self, backend, timeout, upstream=""):
        sy = self.switchyard(config([backend], extra_cluster=upstream, routes=(
            f"      - cluster: app\n        timeout: {timeout}\n")))
        conn = http.client.HTTPConnection("127.0.0.1", sy.port, timeout=10)
        self.addCleanup(conn.close)
        started = time.monotonic()
        conn.request("GET", "/")
        res = conn.getresponse()
        try:
            return res.read(), time.monotonic() - started
        except http.client.IncompleteRead as e:
            return ("cut", e.partial), time.monotonic() - started

    def test_route_timeout_bounds_the_whole_response_and_0s_only_its_silences(self):
        # Envoy's rule: the route timeout covers the response body too; a response still
        # streaming when it runs out is cut (the client sees the truncation). timeout: 0s lets
        # a long response stream for as long as the endpoint keeps sending, and cuts it when
        # the endpoint is silent for upstream.idle_timeout.
        body, took = self.drip(DripBackend(12, 0.25), "1s")
        self.assertEqual(body[0], "cut", body)
        self.assertTrue(1 <= len(body[1]) < 12, body)
        self.assertLess(took, 2.5)
        idle = "    upstream: { idle_timeout: 1s }\n"
        body, took = self.drip(DripBackend(12, 0.25), "0s", idle)  # 3 s, never quiet for 1 s
        self.assertEqual(body, b"x" * 12)
        body, took = self.drip(DripBackend(2, 2.5), "0s", idle)  # quiet for 2.5 s
        self.assertEqual(body, ("cut", b""))
        self.assertLess(took, 2.4)
