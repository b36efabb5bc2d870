"""What reaches the backend is framed by exactly what switchyard read (a Connection header never
unframes a message, either way), real-sized heads pass, absolute-form targets and HTTP/1.0
requests get a Host, headers switchyard asserts are its own, and only allowed upgrades are
offered. Raw sockets on both sides."""
import socket
import time

from harness import ProxyTestCase, SocketBackend, config, raw_exchange, request, time_scale

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def read_response(sock, timeout=5):
    """One response (Content-Length or chunked) from a socket: (head bytes, body bytes)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"closed before a head: {data!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        body, rest = b"", rest
        while True:
            size_line, rest = rest.split(b"\r\n", 1)
            size = int(size_line, 16)
            if size == 0:
                break
            body += rest[:size]
            rest = rest[size + 2:]
        return head, body
    length = 0
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head, rest[:length]


class HeadRecorder(SocketBackend):
    """Keep-alive backend that records every request head it gets (bodies by Content-Length or
    chunked) and answers each with `reply(head)`."""

    def __init__(self, reply=None, limit=20):
        self.heads = []
        self.reply = reply or (lambda head: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        super().__init__(limit)

    def handle(self, conn):
        data = b""
        while True:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, data = data.split(b"\r\n\r\n", 1)
            self.heads.append(head)
            lower = head.lower()
            length = 0
            for line in lower.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if b"transfer-encoding: chunked" in lower:
                # chunks, the last chunk, trailer fields, a blank line
                while True:
                    at = data.find(b"0\r\n") if data.startswith(b"0\r\n") else data.find(b"\r\n0\r\n")
                    end = data.find(b"\r\n\r\n", at) if at >= 0 else -1
                    if at >= 0 and (end >= 0 or data[at:].startswith(b"0\r\n\r\n")):
                        break
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                if data[at:].startswith(b"0\r\n\r\n"):
                    data = data[at + 5:]
                else:
                    data = data[end + 4:]
            else:
                while len(data) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                data = data[length:]
            conn.sendall(self.reply(head))

    def header(self, i, name):
        for line in self.heads[i].split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == name.lower().encode():
                return v.strip().decode()
        return None

    def wait_heads(self, n, timeout=5):
        deadline = time.monotonic() + timeout * time_scale()
        while len(self.heads) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.heads)


class HopByHopFramingTest(ProxyTestCase):
    def test_connection_naming_a_framing_field_is_refused(self):
        # A request whose Connection header names Content-Length, Transfer-Encoding or Host
        # gets 400 and a closed connection: the body (a GET in disguise) never reaches the
        # backend as a second request.
        b = self.backend("b", extra=("--log-requests",))
        sy = self.switchyard(config([b]))
        cases = [
            b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\n"
            b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
            b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, transfer-encoding\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n",
            b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: host\r\n\r\n",
        ]
        for data in cases:
            out = raw_exchange(sy.port, data)
            self.assertTrue(out.startswith(b"HTTP/1.1 400"), out)
            self.assertIn(b"Connection header names a framing field", out)
        out = raw_exchange(sy.port, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertIn(b"200 OK", out)
        b.wait_for_line(r"REQUEST GET /ok")
        self.assertFalse([l for l in b.stdout if "smuggled" in l], b.stdout)

    def test_response_connection_naming_content_length_keeps_its_framing(self):
        # The endpoint's keep-alive response names Content-Length in Connection: the client
        # still gets a framed response, and its next request on the same connection gets its
        # own response (no hang, nothing mixed up).
        def reply(head):
            path = head.split(b" ")[1]
            body = b"answer to " + path
            return (b"HTTP/1.1 200 OK\r\nConnection: Content-Length, X-Drop\r\nX-Drop: 1\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body) + body)
        be = HeadRecorder(reply)
        self.addCleanup(be.close)
        sy = self.switchyard(config([be], workers=1))
        with socket.create_connection(("127.0.0.1", sy.port), timeout=5) as s:
            for path in (b"/one", b"/two"):
                s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
                head, body = read_response(s)
                self.assertEqual(body, b"answer to " + path)
                self.assertIn(b"Content-Length: %d" % len(body), head)
                self.assertNotIn(b"X-Drop", head)  # what Connection names is still hop-by-hop

    def test_forwarded_request_framed_by_what_was_read(self):
        # Whatever framing the client used, the backend gets exactly one Content-Length or
        # Transfer-Encoding, set by switchyard, and each pipelined request separately.
        be = HeadRecorder()
        self.addCleanup(be.close)
        sy = self.switchyard(config([be], workers=1))
        data = (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
                b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
                b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = raw_exchange(sy.port, data)
        self.assertEqual(out.count(b"HTTP/1.1 200"), 3, out)
        self.assertEqual(be.wait_heads(3), 3)
        self.assertEqual([h.split(b" ")[1] for h in be.heads], [b"/a", b"/b", b"/c"])
        self.assertEqual(be.heads[0].lower().count(b"content-length"), 1)
        self.assertIn(b"transfer-encoding: chunked", be.heads[1].lower())
        self.assertNotIn(b"content-length", be.heads[1].lower())
        self.assertNotIn(b"content-length", be.heads[2].lower())
        self.assertNotIn(b"transfer-encoding", be.heads[2].lower())


class HeadSizeTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.be = HeadRecorder()
        self.addCleanup(self.be.close)
        self.sy = self.switchyard(config([self.be], workers=1))  # default 16 KiB heads

    def test_twelve_kib_of_headers_pass(self):
        headers = {f"X-Big-{i}": "v" * 4000 for i in range(3)}
        status, _, _ = request(self.sy.port, "GET", "/", headers=headers)
        self.assertEqual(status, 200)
        self.assertEqual(self.be.header(0, "X-Big-2"), "v" * 4000)

    def test_ten_kib_cookie_passes_whole(self):
        cookie = "session=" + "c" * 10240
        status, _, _ = request(self.sy.port, "GET", "/", headers={"Cookie": cookie})
        self.assertEqual(status, 200)
        self.assertEqual(self.be.header(0, "Cookie"), cookie)

    def test_head_arriving_in_small_pieces(self):
        # 12 KiB of headers sent 500 bytes at a time: parsed once complete.
        data = b"GET /slow HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-Piece-%d: %s\r\n" % (i, b"p" * 1000) for i in range(12)) + \
            b"Connection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", self.sy.port), timeout=5) as s:
            for i in range(0, len(data), 500):
                s.sendall(data[i:i + 500])
                time.sleep(0.002)
            head, body = read_response(s)
        self.assertIn(b"200 OK", head)
        self.assertEqual(self.be.header(0, "X-Piece-11"), "p" * 1000)

    def test_over_the_limit(self):
        # A head over max_request_header_bytes (16 KiB) is a 431; a 20 KiB target is a 414
        # (the request line alone is over the limit); a 10 KiB target is a 414 too (targets
        # are limited to 8 KiB).
        big = raw_exchange(self.sy.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 17000 +
                           b"\r\n\r\n")
        self.assertTrue(big.startswith(b"HTTP/1.1 431"), big[:100])
        long_target = raw_exchange(self.sy.port, b"GET /" + b"t" * 20480 + b" HTTP/1.1\r\n"
                                   b"Host: x\r\n\r\n")
        self.assertTrue(long_target.startswith(b"HTTP/1.1 414"), long_target[:100])
        ten = raw_exchange(self.sy.port, b"GET /" + b"t" * 10240 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(ten.startswith(b"HTTP/1.1 414"), ten[:100])
        self.assertEqual(len(self.be.heads), 0)


class HostTest(ProxyTestCase):
    def test_absolute_form_replaces_host_and_is_forwarded_in_origin_form(self):
        be = HeadRecorder()
        self.addCleanup(be.close)
        sy = self.switchyard(config([be]))
        out = raw_exchange(sy.port, b"GET http://Other.Example:8080/p/q?x=1 HTTP/1.1\r\n"
                           b"Host: ignored.example\r\nConnection: close\r\n\r\n")
        self.assertIn(b"200 OK", out)
        self.assertEqual(be.heads[0].split(b"\r\n")[0], b"GET /p/q?x=1 HTTP/1.1")
        self.assertEqual(be.header(0, "Host"), "Other.Example:8080")
        self.assertEqual(be.heads[0].lower().count(b"\r\nhost:"), 1)

    def test_http10_without_host_gets_one(self):
        be = HeadRecorder()
        self.addCleanup(be.close)
        sy = self.switchyard(config([be]))
        out = raw_exchange(sy.port, b"GET /old HTTP/1.0\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.0 200"), out)
        self.assertEqual(be.heads[0].split(b"\r\n")[0], b"GET /old HTTP/1.1")
        self.assertEqual(be.header(0, "Host"), be.address)


class AssertedHeadersTest(ProxyTestCase):
    LOCALITY = "    locality: { client_region: header:X-Client-Region }\n"

    def test_untrusted_region_header_replaced_by_switchyard_decision(self):
        be = HeadRecorder()
        self.addCleanup(be.close)
        sy = self.switchyard(config([be], extra_listener="    local_region: us-east\n",
                                    extra_cluster=self.LOCALITY))
        request(sy.port, "GET", "/", headers={"X-Client-Region": "eu-west",
                                              "Forwarded": "for=1.2.3.4",
                                              "X-Forwarded-Host": "evil.example"})
        self.assertEqual(be.header(0, "X-Client-Region"), "us-east")
        self.assertIsNone(be.header(0, "Forwarded"))
        self.assertIsNone(be.header(0, "X-Forwarded-Host"))

    def test_untrusted_region_header_removed_without_locality(self):
        be = HeadRecorder()
        self.addCleanup(be.close)
        sy = self.switchyard(config([be]))
        request(sy.port, "GET", "/", headers={"X-Client-Region": "eu-west"})
        self.assertIsNone(be.header(0, "X-Client-Region"))

    def test_trusted_peer_headers_pass(self):
        be = HeadRecorder()
        self.addCleanup(be.close)
        sy = self.switchyard(config([be], extra_listener="    trusted_proxies: [127.0.0.0/8]\n",
                                    extra_cluster=self.LOCALITY))
        request(sy.port, "GET", "/", headers={"X-Client-Region": "eu-west",
                                              "Forwarded": "for=1.2.3.4",
                                              "X-Forwarded-Host": "shop.example"})
        self.assertEqual(be.header(0, "X-Client-Region"), "eu-west")
        self.assertEqual(be.header(0, "Forwarded"), "for=1.2.3.4")
        self.assertEqual(be.header(0, "X-Forwarded-Host"), "shop.example")


class UpgradeAllowListTest(ProxyTestCase):
    def test_h2c_is_never_offered(self):
        be = HeadRecorder()
        self.addCleanup(be.close)
        sy = self.switchyard(config([be]))
        out = raw_exchange(sy.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings"
                           b"\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
                           b"Connection: close\r\n\r\n")
        self.assertIn(b"200 OK", out)
        lower = be.heads[0].lower()
        self.assertNotIn(b"upgrade", lower)
        self.assertNotIn(b"http2-settings", lower)

    def test_listener_allow_list(self):
        be = HeadRecorder()
        self.addCleanup(be.close)
        sy = self.switchyard(config([be], extra_listener="    upgrade_protocols: [ websocket ]\n"))
        raw_exchange(sy.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                     b"Upgrade: WebSocket\r\nConnection: close\r\n\r\n")
        raw_exchange(sy.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                     b"Upgrade: irc/6.9\r\nConnection: close\r\n\r\n")
        self.assertEqual(be.wait_heads(2), 2)
        self.assertEqual(be.header(0, "Upgrade"), "WebSocket")
        self.assertIsNone(be.header(1, "Upgrade"))
        none = self.switchyard(config([be], extra_listener="    upgrade_protocols: []\n"))
        raw_exchange(none.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                     b"Upgrade: websocket\r\nConnection: close\r\n\r\n")
        self.assertEqual(be.wait_heads(3), 3)
        self.assertIsNone(be.header(2, "Upgrade"))

    def test_bytes_after_101_are_all_delivered(self):
        # The endpoint sends 48 KiB right behind its 101: every byte reaches the client.
        early = bytes(i % 251 for i in range(48 * 1024))

        class Eager(SocketBackend):
            def handle(self, conn):
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\n\r\n" + early)
                time.sleep(0.5)
        be = Eager()
        self.addCleanup(be.close)
        sy = self.switchyard(config([be]))
        with socket.create_connection(("127.0.0.1", sy.port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade"
                      b"\r\n\r\n")
            data = b""
            deadline = time.monotonic() + 5 * time_scale()
            while len(data) < len(early) + 60 and time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        self.assertEqual(rest, early)


class ManyTriesTest(ProxyTestCase):
    def test_every_try_goes_to_an_endpoint_not_tried_yet(self):
        # Eight dead endpoints and one live one, random picks, up to 10 retries: no request
        # tries a dead endpoint twice, so every one succeeds within 9 tries.
        from harness import free_port
        good = self.backend("good")
        dead = "".join(f"      - address: 127.0.0.1:{free_port()}\n" for _ in range(8))
        cfg = config([good], strategy="random", workers=1,
                     routes="      - cluster: app\n        retries: { attempts: 10,"
                            " on: [connect_failure] }\n",
                     extra_cluster="    circuit_breaker: { consecutive_failures: 0 }\n").replace(
            "    endpoints:\n", "    endpoints:\n" + dead)
        sy = self.switchyard(cfg)
        for _ in range(40):
            status, _, _ = request(sy.port, "GET", "/")
            self.assertEqual(status, 200)
