"""Raw bytes on the wire: framing ambiguities that enable request smuggling are refused, the
connection closes after the error, and the backend never sees a second, smuggled request."""
import os
import time

from harness import ProxyTestCase, config, raw_exchange

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

# name, request head and body, expected status. Each is followed by SMUGGLED on the same
# connection: a proxy that misreads the framing would forward it as a second request.
CASES = [
    ("content-length and transfer-encoding",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400),
    ("differing duplicate content-length",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc", 400),
    ("content-length list that disagrees",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 40\r\n\r\nabc", 400),
    ("xchunked", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
    ("chunked then identity",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
    ("chunked twice",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400),
    ("transfer-encoding on http/1.0",
     b"POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("gzip then chunked",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    ("chunk size 0x1",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\na\r\n0\r\n\r\n", 400),
    ("chunk size overflow",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"10000000000000001\r\na\r\n0\r\n\r\n", 400),
    ("negative chunk size",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\na\r\n0\r\n\r\n", 400),
    ("chunk without its crlf",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naX0\r\n\r\n", 400),
    ("negative content-length",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    ("whitespace before colon", b"GET /echo HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n", 400),
    ("nul in a value", b"GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    ("bare cr in a value", b"GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400),
    ("invalid token in a name", b"GET /echo HTTP/1.1\r\nHost: x\r\nX@A: a\r\n\r\n", 400),
    ("invalid token in the method", b"G(T /echo HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("bare lf line endings", b"GET /echo HTTP/1.1\nHost: x\n\n", 400),
]


class SmugglingTest(ProxyTestCase):
    def test_ambiguous_framing_is_refused_and_nothing_is_smuggled(self):
        b = self.backend("b", extra=("--log-requests",))
        sy = self.switchyard(config([b]))
        for name, data, status in CASES:
            with self.subTest(name):
                started = time.monotonic()
                out = raw_exchange(sy.port, data + SMUGGLED, timeout=5)
                self.assertRegex(out[:12], rb"^HTTP/1\.[01] %d" % status, out[:200])
                # exactly one response, then the connection closed (well before the timeout)
                status_lines = [l for l in out.split(b"\r\n") if l.startswith(b"HTTP/1.")]
                self.assertEqual(len(status_lines), 1, out)
                self.assertLess(time.monotonic() - started, 4.0)
        # a well-formed request still goes through, and the backend never saw /smuggled
        out = raw_exchange(sy.port, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertIn(b"200 OK", out)
        b.wait_for_line(r"REQUEST GET /ok")
        self.assertFalse([l for l in b.stdout if "smuggled" in l], b.stdout)

    def test_identical_duplicate_content_length_is_collapsed(self):
        # RFC 9112 §6.3: identical duplicates are one length; the backend receives one field.
        b = self.backend("b")
        sy = self.switchyard(config([b]))
        out = raw_exchange(sy.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                           b"Content-Length: 3\r\nConnection: close\r\n\r\nabc")
        self.assertIn(b"200 OK", out)
        self.assertIn(b"X-Received-Length: 3", out)
        lines = out.split(b"\r\n")
        self.assertEqual(len([l for l in lines if l.startswith(b"Content-Length:")]), 1, out)
        echo_headers = [l for l in out.split(b"\r\n") if l.startswith(b"X-Echo-Headers")][0]
        self.assertEqual(echo_headers.count(b"Content-Length"), 1, echo_headers)


class ListenerTest(ProxyTestCase):
    def test_second_instance_on_same_port_fails_loudly(self):
        # SO_REUSEPORT would let a second process share the port silently; switchyard refuses.
        b = self.backend("b")
        sy = self.switchyard(config([b]))
        import subprocess
        from harness import SWITCHYARD
        cfg = config([b]).replace("listen: 127.0.0.1:0\n    routes",
                                  f"listen: 127.0.0.1:{sy.port}\n    routes")
        path = sy.config_path + ".second.yaml"
        with open(path, "w") as f:
            f.write(cfg)
        self.addCleanup(os.unlink, path)
        p = subprocess.run([SWITCHYARD, "--config", path], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already in use", p.stderr)
