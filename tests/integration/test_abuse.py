"""What an outside audit (issue 22) and attackers after it try against the real daemon, each
while a normal client is served: HTTP/2 streams whose body never comes (1,100 of them on 11
connections), the same over HTTP/1.1, bodies that trickle one byte and stop, "MadeYouReset"
(CVE-2025-8671: frames that make the server reset streams), SETTINGS and CONTINUATION floods,
an upstream that sends GOAWAY after every stream or refuses every second one, and a stderr that
nobody reads."""
import fcntl
import http.client
import os
import re
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from harness import SWITCHYARD, ProxyTestCase, config, request, time_scale
from test_admin_views import admin
from test_health import wait_for
from test_http2 import PREFACE, RawH2Origin, frame, get_block, goaway_code, read_frames


def lit(name, value):
    """An HPACK literal field without indexing, new name."""
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def post_block(length, path=b"/echo"):
    # :method POST, :scheme http, :path, :authority, content-length.
    return (b"\x83\x86\x04" + bytes([len(path)]) + path + b"\x01\x09127.0.0.1" +
            lit(b"content-length", str(length).encode()))


def h2_connection(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(PREFACE + frame(4, 0, 0))
    return s


def metric(sy, pattern):
    text = admin(sy, "GET", "/metrics")[2]
    m = re.search(r"(?m)^" + pattern + r" (\d+(?:\.\d+)?(?:e[+-]?\d+)?)$", text)
    return float(m.group(1)) if m else 0.0


def upstream_posts(backend):
    """POST heads that reached the backend (whether or not their body completed)."""
    return sum(1 for line in backend.stdout if line.startswith("HEADERS POST"))


class StalledBodiesTest(ProxyTestCase):
    def sy(self, b, extra_limits="", pending=1024):
        return self.switchyard(config(
            [b], workers=2,
            extra_listener=("    protocols: [h2, http1]\n"
                            f"    limits: {{ request_body_timeout: 2s{extra_limits} }}\n"),
            extra_cluster=f"    circuit_breaker: {{ max_pending_requests: {pending} }}\n"))

    def normal_clients_served(self, sy, n=20):
        for i in range(n):
            self.assertEqual(request(sy.port, "GET", f"/n{i}")[0], 200)
        out = subprocess.run(["h2load", "-n", str(n), "-c", "1", "-m", "4",
                              f"http://127.0.0.1:{sy.port}/"],
                             capture_output=True, text=True, timeout=60).stdout
        self.assertIn(f"{n} succeeded", out, out)

    def test_h2_streams_whose_body_never_comes_take_no_endpoint(self):
        # 11 connections x 100 POST streams with a content-length and no DATA: none of them
        # claims an endpoint or a slot of max_pending_requests (1024), so every other client
        # is served; after request_body_timeout each gets 408.
        b = self.backend("b", extra=["--log-requests"])
        sy = self.sy(b)
        conns = []
        for _ in range(11):
            s = h2_connection(sy.port)
            s.sendall(b"".join(frame(1, 0x4, 1 + 2 * i, post_block(1000)) for i in range(100)))
            conns.append(s)
        self.normal_clients_served(sy)
        self.assertEqual(upstream_posts(b), 0, "a stalled stream reached the endpoint")
        # Each stalled stream is answered (408) once request_body_timeout has passed.
        frames = read_frames(conns[0], lambda f: len({sid for k, _, sid, _ in f if k == 1}) >= 100,
                             timeout=10)
        self.assertEqual(len({sid for k, _, sid, _ in frames if k == 1}), 100)
        self.assertIsNotNone(wait_for(
            lambda: metric(sy, r'switchyard_downstream_requests_total\{code="408",'
                               r'listener="ingress"\}') >= 1100, 15))
        for s in conns:
            s.close()

    def test_http1_heads_whose_body_never_comes_take_no_endpoint(self):
        b = self.backend("b", extra=["--log-requests"])
        sy = self.sy(b, pending=50)
        conns = []
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", sy.port), timeout=10)
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            conns.append(s)
        # One that asks for 100-continue gets it at once, and is held to the same deadline.
        e = socket.create_connection(("127.0.0.1", sy.port), timeout=10)
        e.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        self.assertEqual(e.recv(100), b"HTTP/1.1 100 Continue\r\n\r\n")
        conns.append(e)
        self.normal_clients_served(sy)
        self.assertEqual(upstream_posts(b), 0)
        conns[0].settimeout(10)
        self.assertTrue(conns[0].recv(100).startswith(b"HTTP/1.1 408"))
        for s in conns:
            s.close()

    def test_trickled_bodies_are_held_to_the_in_flight_cap(self):
        # Streams that send one byte and stop do start their requests; a connection may have at
        # most max_requests_in_flight of them with endpoints, so 11 connections hold 44 of the
        # cluster's 100 slots and a normal client is still served.
        b = self.backend("b", extra=["--log-requests"])
        sy = self.sy(b, extra_limits=", max_requests_in_flight: 4", pending=100)
        conns = []
        for _ in range(11):
            s = h2_connection(sy.port)
            s.sendall(b"".join(frame(1, 0x4, 1 + 2 * i, post_block(1000)) +
                               frame(0, 0, 1 + 2 * i, b"x") for i in range(100)))
            conns.append(s)
        self.assertIsNotNone(wait_for(lambda: upstream_posts(b) >= 44, 10))
        self.normal_clients_served(sy)
        time.sleep(0.5)  # were more let through meanwhile?
        self.assertEqual(upstream_posts(b), 44)
        for s in conns:
            s.close()


class ResetAbuseTest(ProxyTestCase):
    def sy(self, b):
        return self.switchyard(config([b], workers=1,
                                      extra_listener="    protocols: [h2, http1]\n"))

    def attack(self, sy, make_frames, streams=400):
        s = h2_connection(sy.port)
        try:
            for i in range(streams):
                s.sendall(make_frames(1 + 2 * i))
        except (BrokenPipeError, ConnectionResetError):
            pass
        frames = read_frames(s, lambda f: goaway_code(f) is not None, timeout=10)
        s.close()
        self.assertEqual(request(sy.port)[0], 200)
        return goaway_code(frames)

    def test_made_you_reset_ends_in_enhance_your_calm(self):
        # Streams the server itself resets because of the client's frames count like the
        # client's own resets: each pattern ends in GOAWAY ENHANCE_YOUR_CALM, and the endpoint
        # sees a bounded number of requests however many streams are tried.
        b = self.backend("b", extra=["--log-requests"])
        sy = self.sy(b)
        requests = lambda: sum(1 for line in b.stdout if line.startswith("REQUEST"))  # noqa

        def window_overflow(sid):  # a GET, then WINDOW_UPDATE past 2^31-1 on its open window
            return (frame(1, 0x5, sid, get_block()) +
                    frame(8, 0, sid, struct.pack(">I", 0x7fffffff)))

        def data_past_length(sid):  # content-length 1, then 5 bytes
            return frame(1, 0x4, sid, post_block(1)) + frame(0, 0x1, sid, b"12345")

        def data_after_end(sid):  # END_STREAM on the head, then DATA on the closed half
            return frame(1, 0x5, sid, get_block()) + frame(0, 0x1, sid, b"late")

        # DATA on a closed half: nghttp2 ends the whole connection at the first one
        # (STREAM_CLOSED), which bounds it at once.
        for pattern, codes in ((window_overflow, (0xb,)), (data_past_length, (0xb,)),
                               (data_after_end, (0xb, 0x5))):
            before = requests()
            self.assertIn(self.attack(sy, pattern), codes, pattern.__name__)
            time.sleep(0.2)
            self.assertLessEqual(requests() - before, 150, pattern.__name__)
        # The warning is written by the worker's log thread: it may follow the GOAWAY.
        self.assertIsNotNone(wait_for(lambda: "rapid reset" in "".join(sy.stderr), 5),
                             "".join(sy.stderr))

    def test_settings_and_continuation_floods(self):
        b = self.backend("b")
        sy = self.sy(b)

        def settings_flood(sid):
            return b"".join(frame(4, 0, 0) for _ in range(20)) if sid < 600 else b""

        self.assertEqual(self.attack(sy, settings_flood, streams=300), 0xb)
        # The warning is written by the worker's log thread: it may follow the GOAWAY.
        self.assertIsNotNone(wait_for(lambda: "SETTINGS or PING flood" in "".join(sy.stderr), 5),
                             "".join(sy.stderr))

        def continuation_flood(sid):
            if sid != 1:
                return b""
            out = frame(1, 0x1, 1, get_block())  # END_STREAM, no END_HEADERS
            return out + b"".join(frame(9, 0, 1, b"\x40\x01x\x01y") for _ in range(12))

        self.assertEqual(self.attack(sy, continuation_flood, streams=1), 0xb)
        # switchyard's own limit (8) acts, not nghttp2's (16): the log names the attack.
        self.assertIsNotNone(wait_for(
            lambda: "CONTINUATION flood" in "".join(sy.stderr), 5), "".join(sy.stderr))


class UnprocessedStreamsTest(ProxyTestCase):
    """Streams an HTTP/2 endpoint did not process (past its GOAWAY, or refused) are sent again
    on another connection whatever their method (RFC 9113 §8.7)."""

    def sy_for(self, origin):
        return self.switchyard(config([origin], workers=1, extra_cluster="    protocol: h2c\n",
                                      extra_listener="    protocols: [h2, http1]\n"))

    def posts(self, sy, n=20):
        body = tempfile.NamedTemporaryFile(delete=False)
        body.write(b"a gRPC-sized message")
        body.close()
        self.addCleanup(os.unlink, body.name)
        out = subprocess.run(["h2load", "-n", str(n), "-c", "1", "-m", "1", "-d", body.name,
                              f"http://127.0.0.1:{sy.port}/"], capture_output=True, text=True,
                             timeout=60).stdout
        return out

    def test_goaway_after_every_stream(self):
        origin = RawH2Origin(goaway_each=True)
        self.addCleanup(origin.close)
        sy = self.sy_for(origin)
        out = self.posts(sy)
        self.assertIn("20 succeeded", out, out)
        self.assertEqual(origin.answered, 20)
        # Sequential POSTs over HTTP/1.1 too.
        for _ in range(10):
            self.assertEqual(request(sy.port, "POST", "/", body=b"x" * 100)[0], 200)

    def test_every_second_stream_refused(self):
        origin = RawH2Origin(refuse_every=2)
        self.addCleanup(origin.close)
        sy = self.sy_for(origin)
        out = self.posts(sy)
        self.assertIn("20 succeeded", out, out)
        self.assertEqual(origin.answered, 20)
        self.assertGreaterEqual(
            metric(sy, r'switchyard_upstream_retries_total\{cluster="app"\}'), 19)


class UnreadStderrTest(unittest.TestCase):
    def test_a_stderr_nobody_reads_never_stops_a_worker(self):
        # stderr into a 4 KiB pipe that is read only until switchyard is up; then 2,000
        # requests to a dead endpoint each make debug lines (connect failed, upstream failed)
        # and 100 rapid-reset connections make warnings: once the pipe and the log's queue
        # (1,024 lines) are full the lines are dropped and counted, and requests are answered
        # all along (a worker that wrote to stderr itself would stop at the 50th line or so).
        from harness import Backend, free_port
        b = Backend("b")
        self.addCleanup(b.stop)
        routes = "      - match: { path_prefix: /dead }\n        cluster: dead\n      - cluster: app\n"
        text = config([b], workers=2, extra_listener="    protocols: [h2, http1]\n",
                      routes=routes)
        text += (f"  - name: dead\n    endpoints:\n      - address: 127.0.0.1:{free_port()}\n"
                 "    circuit_breaker: { consecutive_failures: 0 }\n")
        fd, path = tempfile.mkstemp(suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        r, w = os.pipe()
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
        proc = subprocess.Popen([SWITCHYARD, "--config", path, "--log-level", "debug"],
                                stdout=subprocess.DEVNULL, stderr=w, stdin=subprocess.DEVNULL)
        os.close(w)
        self.addCleanup(lambda: (proc.kill(), proc.wait(), os.close(r)))
        text, deadline = b"", time.monotonic() + 10 * time_scale()
        while b"serving with" not in text and time.monotonic() < deadline:
            text += os.read(r, 65536)
        port = int(re.search(rb"listener 'ingress' listening on [\d.]+:(\d+)", text).group(1))
        admin_port = int(re.search(rb"admin listening on [\d.]+:(\d+)", text).group(1))
        # From here nobody reads r.
        conn = None
        for i in range(2000):
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/dead")
            res = conn.getresponse()
            res.read()
            self.assertEqual(res.status, 502)
            if res.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
            if i % 200 == 0:
                self.assertEqual(request(port, "GET", "/", timeout=5)[0], 200)
        for _ in range(100):
            s = h2_connection(port)
            s.sendall(b"".join(frame(1, 0x5, 1 + 2 * i, get_block()) +
                               frame(3, 0, 1 + 2 * i, b"\x00\x00\x00\x08") for i in range(150)))
            s.close()
        for _ in range(20):
            self.assertEqual(request(port, "GET", "/", timeout=5)[0], 200)
        metrics = request(admin_port, "GET", "/metrics", timeout=5)[2].decode()
        dropped = float(re.search(r"(?m)^switchyard_log_dropped_total (\S+)$", metrics).group(1))
        self.assertGreater(dropped, 1000)
        self.assertIsNone(proc.poll())


if __name__ == "__main__":
    unittest.main()
