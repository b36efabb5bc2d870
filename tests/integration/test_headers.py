"""Forwarding headers and trust, bodiless statuses, and Connection: close from the backend."""
import http.client

from harness import ProxyTestCase, config, request
from test_proxy import RawBackend

LOCALITY = "    locality: { client_region: header:X-Client-Region }\n"


class ForwardingTrustTest(ProxyTestCase):
    def test_trusted_peer_xff_appended_and_region_believed(self):
        b = self.backend("b", region="us-east")
        listener = ("    local_region: us-east\n    debug_headers: true\n"
                    "    trusted_proxies: [127.0.0.0/8]\n")
        sy = self.switchyard(config([b], extra_listener=listener, extra_cluster=LOCALITY))
        _, headers, _ = request(sy.port, "GET", "/echo", headers={
            "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https",
            "X-Client-Region": "eu-west"})
        self.assertEqual(headers["x-echo-xff"], "203.0.113.7, 127.0.0.1")
        self.assertEqual(headers["x-echo-xfp"], "https")
        self.assertEqual(headers["x-switchyard-client-region"], "eu-west")

    def test_untrusted_peer_xff_replaced_and_region_ignored(self):
        b = self.backend("b", region="us-east")
        listener = ("    local_region: us-east\n    debug_headers: true\n"
                    "    trusted_proxies: [10.0.0.0/8]\n"
                    "    region_map: { 127.0.0.0/8: ap-south }\n")
        sy = self.switchyard(config([b], extra_listener=listener, extra_cluster=LOCALITY))
        _, headers, _ = request(sy.port, "GET", "/echo", headers={
            "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https",
            "X-Client-Region": "eu-west"})
        self.assertEqual(headers["x-echo-xff"], "127.0.0.1")
        self.assertEqual(headers["x-echo-xfp"], "http")
        self.assertEqual(headers["x-switchyard-client-region"], "ap-south")  # from region_map

    def test_backend_details_hidden_without_debug_headers(self):
        b = self.backend("b", region="us-east")
        sy = self.switchyard(config([b], extra_cluster=LOCALITY))
        _, headers, _ = request(sy.port, "GET", "/")
        self.assertFalse([h for h in headers if h.startswith("x-switchyard")], headers)


class BodilessStatusTest(ProxyTestCase):
    def test_204_and_304_carry_no_body_and_keep_alive(self):
        b = self.backend("b")
        sy = self.switchyard(config([b]))
        conn = http.client.HTTPConnection("127.0.0.1", sy.port, timeout=5)
        sock = None
        for code in (204, 304, 200):
            conn.request("GET", f"/status?code={code}")
            res = conn.getresponse()
            body = res.read()
            self.assertEqual(res.status, code)
            if code != 200:
                self.assertEqual(body, b"")
                self.assertIsNone(res.getheader("Transfer-Encoding"))
            sock = sock or conn.sock
            self.assertIs(conn.sock, sock)
        conn.close()


class BackendCloseTest(ProxyTestCase):
    def test_backend_connection_close_is_not_reused(self):
        # Each response says Connection: close and the backend closes: switchyard must open a
        # new connection per request (RawBackend serves one request per connection) and every
        # request succeeds.
        raw = RawBackend(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                         limit=10)
        self.addCleanup(raw.close)
        sy = self.switchyard(config([raw], workers=1))
        conn = http.client.HTTPConnection("127.0.0.1", sy.port, timeout=5)
        for _ in range(5):
            conn.request("GET", "/")
            res = conn.getresponse()
            self.assertEqual((res.status, res.read()), (200, b"ok"))
            self.assertIsNone(res.getheader("Connection"))  # the client's connection stays open
        conn.close()
