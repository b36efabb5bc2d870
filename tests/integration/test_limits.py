"""Limits and timeouts from listeners.limits, and upstream failures, on raw sockets."""
import http.client
import socket
import time

from harness import ProxyTestCase, config, raw_exchange, time_scale
from test_proxy import RawBackend

LIMITS = ("    limits:\n"
          "      max_connections: 3\n"
          "      max_request_header_bytes: 4096\n"
          "      max_request_body_bytes: 1000\n"
          "      header_timeout: 1s\n"
          "      idle_timeout: 1s\n")


def recv_all(sock, timeout):
    """Everything until the peer closes, or until timeout (then what arrived so far)."""
    sock.settimeout(timeout)
    out = b""
    deadline = time.monotonic() + timeout * time_scale()
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out


class LimitsTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.b = self.backend("b")
        self.sy = self.switchyard(config([self.b], extra_listener=LIMITS))

    def test_slowloris_head_gets_408_and_close(self):
        # A head that does not complete within header_timeout (1 s) gets 408, then close.
        with socket.create_connection(("127.0.0.1", self.sy.port)) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            started = time.monotonic()
            out = recv_all(s, 5)
            elapsed = time.monotonic() - started
        self.assertTrue(out.startswith(b"HTTP/1.1 408"), out)
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 3.5)

    def test_idle_keep_alive_closed_after_idle_timeout(self):
        # After a response, a silent keep-alive connection is closed after idle_timeout (1 s),
        # without a response.
        with socket.create_connection(("127.0.0.1", self.sy.port)) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            first = s.recv(65536)
            self.assertIn(b"200 OK", first)
            started = time.monotonic()
            rest = recv_all(s, 5)
            elapsed = time.monotonic() - started
        self.assertEqual(rest, b"")
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 3.5)

    def test_max_connections_refuses_new_keeps_existing(self):
        # With max_connections 3, a fourth connection is closed at once; the three keep working.
        conns = [http.client.HTTPConnection("127.0.0.1", self.sy.port, timeout=5) for _ in range(3)]
        for c in conns:
            c.request("GET", "/")
            self.assertEqual(c.getresponse().read().startswith(b"hello"), True)
        with socket.create_connection(("127.0.0.1", self.sy.port)) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(recv_all(s, 3), b"")
        for c in conns:
            c.request("GET", "/")
            self.assertEqual(c.getresponse().status, 200)
            c.close()

    def test_long_target_is_414(self):
        out = raw_exchange(self.sy.port,
                           b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 414"), out[:100])

    def test_large_head_is_431(self):
        out = raw_exchange(self.sy.port,
                           b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 431"), out[:100])

    def test_body_over_limit_is_413(self):
        # Declared too large: refused before the body is read.
        out = raw_exchange(self.sy.port, b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 5000\r\n\r\n" + b"a" * 5000)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:100])
        # Chunked and discovered while streaming: 413 too, as long as no response has started.
        body = b"".join(b"100\r\n" + b"a" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
        out = raw_exchange(self.sy.port, b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n" + body)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:100])

    def test_duplicate_host_and_obs_fold_are_400(self):
        for data in (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                     b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n",
                     b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"):
            out = raw_exchange(self.sy.port, data)
            self.assertTrue(out.startswith(b"HTTP/1.1 400"), (data, out[:100]))

    def test_connection_close_is_honoured(self):
        with socket.create_connection(("127.0.0.1", self.sy.port)) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            started = time.monotonic()
            out = recv_all(s, 5)
        self.assertIn(b"Connection: close", out)
        self.assertTrue(out.endswith(b"\n"), out)
        self.assertLess(time.monotonic() - started, 0.9)  # closed by us, not by idle_timeout


class UpstreamFailureTest(ProxyTestCase):
    def test_garbage_from_backend_is_502(self):
        for reply in (b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
                      b"HTTP/1.1 2000 OK\r\n\r\n"):
            raw = RawBackend(reply)
            self.addCleanup(raw.close)
            sy = self.switchyard(config([raw]))
            out = raw_exchange(sy.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertTrue(out.startswith(b"HTTP/1.1 502"), (reply, out[:120]))
            sy.stop()

    def test_reset_mid_body_closes_client_connection(self):
        # The backend promises 100 bytes, sends 3 and closes: the client must see a truncated
        # response on a closed connection, never a complete-looking one.
        raw = RawBackend(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        self.addCleanup(raw.close)
        sy = self.switchyard(config([raw]))
        conn = http.client.HTTPConnection("127.0.0.1", sy.port, timeout=5)
        conn.request("GET", "/")
        res = conn.getresponse()
        with self.assertRaises(http.client.IncompleteRead):
            res.read()
        conn.close()
