"""HTTP/2 through the real daemon (issue 17) with real clients: curl --http2-prior-knowledge
(h2c) and --http2 (ALPN h2 on TLS), nghttp and h2load, to HTTP/1.1 backends and to an h2c
origin (the gRPC peer); per-stream balancing of one connection; and hostile peers speaking raw
frames: rapid reset (CVE-2023-44487), a CONTINUATION flood (CVE-2024-27316) and a PING flood
each get GOAWAY ENHANCE_YOUR_CALM while another client is served; oversized heads get 431."""
import re
import socket
import struct
import subprocess
import time
import unittest

from harness import ProxyTestCase, config, request, time_scale
from test_admin_views import admin
from test_tls import pki

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def get_block(authority=b"127.0.0.1"):
    # HPACK, static table only: :method GET, :scheme http, :path /, :authority literal.
    return b"\x82\x86\x84\x01" + bytes([len(authority)]) + authority


def read_frames(sock, until, timeout=5):
    """Frames (type, flags, stream, payload) until until(frames) holds, EOF or timeout."""
    sock.settimeout(timeout)
    buf, frames = b"", []
    deadline = time.monotonic() + timeout * time_scale()
    while time.monotonic() < deadline and not until(frames):
        try:
            data = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not data:
            break
        buf += data
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            frames.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff,
                           buf[9:9 + n]))
            buf = buf[9 + n:]
    return frames


def goaway_code(frames):
    for kind, _, _, payload in frames:
        if kind == 7:
            return int.from_bytes(payload[4:8], "big")
    return None


def curl(*args):
    out = subprocess.run(["curl", "-s", "--max-time", "10", *args], capture_output=True,
                         timeout=20)
    return out.stdout


class Http2Test(ProxyTestCase):
    def h2c(self, backends, **kw):
        return self.switchyard(config(backends, extra_listener="    protocols: [h2, http1]\n"
                                      "    debug_headers: true\n", **kw))

    def test_h2c_prior_knowledge_and_http1_on_one_listener(self):
        a, b = self.backend("a"), self.backend("b")
        sy = self.h2c([a, b])
        head = curl("-i", "--http2-prior-knowledge", f"http://127.0.0.1:{sy.port}/x").decode()
        self.assertTrue(head.startswith("HTTP/2 200"), head)
        self.assertIn("x-switchyard-endpoint:", head)
        status, _, body = request(sy.port, path="/y")  # HTTP/1.1 still served
        self.assertEqual(status, 200)
        # A 1 MiB body each way through an h2 stream to an HTTP/1.1 backend.
        blob = bytes(range(256)) * 4096
        got = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "--data-binary", "@-",
                              f"http://127.0.0.1:{sy.port}/echo"], input=blob,
                             capture_output=True, timeout=20).stdout
        self.assertEqual(got, blob)

    def test_streams_of_one_connection_are_balanced_each(self):
        backends = [self.backend(n) for n in ("a", "b", "c")]
        sy = self.h2c(backends)
        out = subprocess.run(["h2load", "-n", "300", "-c", "1", "-m", "10",
                              f"http://127.0.0.1:{sy.port}/"], capture_output=True, text=True,
                             timeout=60).stdout
        self.assertIn("300 succeeded", out)
        _, _, metrics = admin(sy, "GET", "/metrics")
        counts = [int(float(v)) for v in re.findall(
            r'switchyard_upstream_requests_total\{cluster="app",code="200",endpoint="[^"]+"\} (\S+)',
            metrics)]
        self.assertEqual(sum(counts), 300, metrics[-1500:])
        for c in counts:
            self.assertLessEqual(abs(c - 100), 5, counts)
        # nghttp: concurrent streams on one connection, all answered.
        out = subprocess.run(["nghttp", "-n", "-s", "-m", "20", f"http://127.0.0.1:{sy.port}/n"],
                             capture_output=True, text=True, timeout=30).stdout
        self.assertEqual(out.count("/n"), 20, out)

    def test_tls_alpn_h2_and_http1_only_listener(self):
        p = pki()
        cert, key = p.a
        a = self.backend("a")
        for protocols, expect in (("", "HTTP/2 200"), ("    protocols: [http1]\n", "HTTP/1.1 200")):
            sy = self.switchyard(config([a], extra_listener=(
                f"{protocols}    tls:\n      certificates:\n"
                f"        - {{ cert_file: {cert}, key_file: {key} }}\n")))
            head = curl("-i", "--http2", "--cacert", p.ca, "--resolve",
                        f"a.test:{sy.port}:127.0.0.1", f"https://a.test:{sy.port}/").decode()
            self.assertTrue(head.startswith(expect), head)
            sy.stop()

    def test_http1_and_h2_clients_to_an_h2c_origin(self):
        from test_grpc import GrpcServer
        g = GrpcServer("g")
        self.processes.append(g)
        sy = self.switchyard(config([g], extra_listener="    protocols: [h2, http1]\n",
                                    extra_cluster="    protocol: h2c\n"))
        for flag in ("--http1.1", "--http2-prior-knowledge"):
            out = subprocess.run(
                ["curl", "-s", "-i", flag, "--raw", "-H", "content-type: application/grpc",
                 "-H", "te: trailers", "--data-binary", "@-",
                 f"http://127.0.0.1:{sy.port}/test.Echo/Unary"],
                input=b"\x00\x00\x00\x00\x02hi", capture_output=True, timeout=20).stdout
            self.assertIn(b"g:hi", out, flag)
            self.assertIn(b"grpc-status: 0", out, flag)  # trailers, on either protocol

    def hostile(self, sy, payload_fn):
        s = socket.create_connection(("127.0.0.1", sy.port))
        s.sendall(PREFACE + frame(4, 0, 0))
        try:
            payload_fn(s)
        except (BrokenPipeError, ConnectionResetError):
            pass
        frames = read_frames(s, lambda f: goaway_code(f) is not None)
        s.close()
        # Another client is served meanwhile and after.
        self.assertEqual(request(sy.port)[0], 200)
        return goaway_code(frames)

    def test_hostile_peers_get_goaway(self):
        a = self.backend("a")
        sy = self.h2c([a])

        def rapid_reset(s):
            out = b""
            for i in range(400):
                sid = 1 + 2 * i
                out += frame(1, 0x5, sid, get_block()) + frame(3, 0, sid, b"\x00\x00\x00\x08")
            s.sendall(out)

        def continuation_flood(s):
            s.sendall(frame(1, 0x1, 1, get_block()))  # END_STREAM, no END_HEADERS
            lit = b"\x40\x01x\x01y"  # literal with indexing, name "x", value "y"
            s.sendall(b"".join(frame(9, 0, 1, lit) for _ in range(200)))

        def ping_flood(s):
            s.sendall(b"".join(frame(6, 0, 0, struct.pack(">Q", i)) for i in range(5000)))

        self.assertEqual(self.hostile(sy, rapid_reset), 0xb)
        self.assertIn(self.hostile(sy, continuation_flood), (0xb, 0x1))
        self.assertEqual(self.hostile(sy, ping_flood), 0xb)
        self.assertIn("rapid reset", "".join(sy.stderr + sy.stdout))

    def test_malformed_fields_never_reach_an_http1_endpoint(self):
        # HTTP/2 to HTTP/1.1 is where smuggling lives: field values with CR/LF or NUL,
        # connection-specific fields (transfer-encoding, connection), names HTTP/1.1 would read
        # differently, and a body longer than its content-length are each refused on the stream
        # (RST_STREAM PROTOCOL_ERROR) and never sent on; :authority wins over a host field.
        from test_proxy import RawBackend
        rec = RawBackend(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", limit=40)
        self.addCleanup(rec.close)
        sy = self.switchyard(config([rec], workers=1, extra_listener="    protocols: [h2, http1]\n"))

        def lit(name, value):  # literal field without indexing, new name
            return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value

        def exchange(block, body=None):
            s = socket.create_connection(("127.0.0.1", sy.port))
            end = 0x4 if body is not None else 0x5
            out = PREFACE + frame(4, 0, 0) + frame(1, end, 1, get_block() + block)
            if body is not None:
                out += frame(0, 1, 1, body)
            s.sendall(out)
            frames = read_frames(s, lambda f: any(k in (1, 3, 7) and sid == 1
                                                  for k, _, sid, _ in f))
            s.close()
            return [(k, p) for k, _, sid, p in frames if sid == 1 and k in (1, 3)]

        refused = {
            "CR LF in a value": lit(b"x-evil", b"a\r\nx-injected: 1"),
            "NUL in a value": lit(b"x-nul", b"a\x00b"),
            "transfer-encoding": lit(b"transfer-encoding", b"chunked"),
            "connection": lit(b"connection", b"close"),
            "upper-case name": lit(b"X-Up", b"1"),
            "colon in a name": lit(b"x:y", b"1"),
            "space in a name": lit(b"x y", b"1"),
        }
        for what, block in refused.items():
            self.assertEqual(exchange(block), [(3, b"\x00\x00\x00\x01")], what)
        self.assertEqual(exchange(lit(b"content-length", b"3"), b"0123456789"),
                         [(3, b"\x00\x00\x00\x01")], "body longer than content-length")
        answered = exchange(lit(b"host", b"other.example"))
        self.assertEqual([k for k, _ in answered], [1], answered)
        deadline = time.monotonic() + 5 * time_scale()
        while len([h for h in rec.heads if h]) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        # What reached the endpoint: the host case, and perhaps the content-length case's head
        # (sent before the extra DATA arrived; the stream's reset then cut its body short).
        heads = [h for h in rec.heads if h]
        plain = [h for h in heads if b"content-length" not in h.lower()]
        self.assertEqual(len(plain), 1, heads)
        self.assertIn(b"\r\nHost: 127.0.0.1\r\n", plain[0])
        for h in heads:
            for word in (b"injected", b"other.example", b"chunked", b"x-nul", b"X-Up", b"x:y",
                         b"x y", b"Connection: close"):
                self.assertNotIn(word, h)
            if h is not plain[0]:
                self.assertLessEqual(len(h.split(b"\r\n\r\n", 1)[1]), 3, h)

    def test_limits_on_a_stream(self):
        a = self.backend("a")
        sy = self.h2c([a])
        head = curl("-i", "--http2-prior-knowledge", "-H", "x-big: " + "v" * 20000,
                    f"http://127.0.0.1:{sy.port}/").decode()
        self.assertTrue(head.startswith("HTTP/2 431"), head[:200])
        s = socket.create_connection(("127.0.0.1", sy.port))
        s.sendall(PREFACE + frame(4, 0, 0))
        frames = read_frames(s, lambda f: any(k == 4 and fl == 0 for k, fl, _, _ in f))
        s.close()
        settings = next(p for k, fl, _, p in frames if k == 4 and fl == 0)
        values = {int.from_bytes(settings[i:i + 2], "big"): int.from_bytes(settings[i + 2:i + 6], "big")
                  for i in range(0, len(settings), 6)}
        self.assertEqual(values[3], 100)   # MAX_CONCURRENT_STREAMS
        self.assertEqual(values[6], 16384)  # MAX_HEADER_LIST_SIZE = max_request_header_bytes


class RawH2Origin:
    """An HTTP/2 origin speaking raw frames (no HPACK decoding: it answers every request
    stream with ":status 200" from the static table and a body naming its connection).
    goaway: on the first connection, once two streams are open, answer the first, then send
    GOAWAY with last_stream_id = that stream (the second was not processed). max_streams:
    SETTINGS_MAX_CONCURRENT_STREAMS, with each answer held 300 ms."""

    def __init__(self, goaway=False, max_streams=None, ack_ping=True, goaway_each=False,
                 refuse_every=0):
        """goaway_each: every connection answers its first request (once its END_STREAM is in),
        then sends GOAWAY with last_stream_id = that stream and closes 100 ms later, leaving any
        other stream unprocessed. refuse_every=N: every Nth request stream (over all
        connections) gets RST_STREAM REFUSED_STREAM; the others are answered at END_STREAM."""
        import threading
        self.goaway, self.max_streams, self.ack_ping = goaway, max_streams, ack_ping
        self.goaway_each, self.refuse_every = goaway_each, refuse_every
        self.answered = 0  # streams answered
        self.seen = 0      # request streams seen
        self.pings = 0   # PINGs received (not ACKs)
        self.closed = 0  # connections the peer closed
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.connections = 0
        self.streams = []  # (connection, stream id)
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
            threading.Thread(target=self._serve, args=(conn, n), daemon=True).start()

    def _answer(self, conn, n, sid, delay=0):
        time.sleep(delay)
        try:
            conn.sendall(frame(1, 0x4, sid, b"\x88") + frame(0, 0x1, sid, f"conn {n}".encode()))
            with self.lock:
                self.answered += 1
        except OSError:
            pass

    def _on_request_end(self, conn, n, sid, state):
        """goaway_each / refuse_every: the request on stream sid is complete."""
        with self.lock:
            self.seen += 1
            seen = self.seen
        if self.refuse_every and seen % self.refuse_every == 0:
            conn.sendall(frame(3, 0, sid, struct.pack(">I", 7)))  # REFUSED_STREAM
            return
        if self.goaway_each:
            if state.get("done"):
                return  # past the GOAWAY: never processed
            state["done"] = True
            self._answer(conn, n, sid)
            conn.sendall(frame(7, 0, 0, struct.pack(">II", sid, 0)))
            import threading
            def hang_up():
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            threading.Timer(0.1, hang_up).start()
            return
        self._answer(conn, n, sid)

    def _serve(self, conn, n):
        import threading
        settings = b"" if self.max_streams is None else struct.pack(">HI", 3, self.max_streams)
        conn.sendall(frame(4, 0, 0, settings))
        buf, open_streams, state = b"", [], {}
        try:
            while len(buf) < 24:
                buf += conn.recv(65536)
            buf = buf[24:]
            while True:
                while len(buf) >= 9:
                    length = int.from_bytes(buf[:3], "big")
                    if len(buf) < 9 + length:
                        break
                    kind, flags = buf[3], buf[4]
                    sid = int.from_bytes(buf[5:9], "big") & 0x7fffffff
                    buf = buf[9 + length:]
                    if kind == 4 and not flags & 1:
                        conn.sendall(frame(4, 1, 0))
                    elif kind == 6 and not flags & 1:
                        with self.lock:
                            self.pings += 1
                        if self.ack_ping:
                            conn.sendall(frame(6, 1, 0, b"\0" * 8))
                    elif (kind in (0, 1) and (self.goaway_each or self.refuse_every)):
                        if kind == 1:
                            with self.lock:
                                self.streams.append((n, sid))
                        if flags & 1:  # END_STREAM: the request is complete
                            self._on_request_end(conn, n, sid, state)
                    elif kind == 1:
                        with self.lock:
                            self.streams.append((n, sid))
                        open_streams.append(sid)
                        if self.goaway and n == 1:
                            if len(open_streams) == 2:
                                self._answer(conn, n, open_streams[0])
                                conn.sendall(frame(7, 0, 0, struct.pack(">II", open_streams[0], 0)))
                        elif self.max_streams is not None:
                            threading.Thread(target=self._answer, args=(conn, n, sid, 0.3),
                                             daemon=True).start()
                        else:
                            self._answer(conn, n, sid)
                data = conn.recv(65536)
                if not data:
                    with self.lock:
                        self.closed += 1
                    return
                buf += data
        except OSError:
            return

    def close(self):
        self.sock.close()


class Http2UpstreamTest(ProxyTestCase):
    def sy_for(self, origin):
        from harness import config as cfg
        return self.switchyard(cfg([origin], workers=1, extra_cluster="    protocol: h2c\n",
                                   extra_listener="    protocols: [h2, http1]\n"))

    def two_at_once(self, sy):
        out = subprocess.run(["h2load", "-n", "2", "-c", "1", "-m", "2",
                              f"http://127.0.0.1:{sy.port}/"], capture_output=True, text=True,
                             timeout=30).stdout
        return out

    def test_goaway_streams_it_did_not_cover_are_retried(self):
        origin = RawH2Origin(goaway=True)
        self.addCleanup(origin.close)
        sy = self.sy_for(origin)
        out = self.two_at_once(sy)
        self.assertIn("2 succeeded", out)
        # Both went on connection 1; the one past GOAWAY's last stream went again on 2.
        self.assertEqual(sorted(n for n, _ in origin.streams), [1, 1, 2], origin.streams)

    def test_max_concurrent_streams_opens_another_connection(self):
        origin = RawH2Origin(max_streams=1)
        self.addCleanup(origin.close)
        sy = self.sy_for(origin)
        url = f"http://127.0.0.1:{sy.port}/"
        first = subprocess.Popen(["curl", "-s", "--http2-prior-knowledge", url],
                                 stdout=subprocess.PIPE)
        # Once the first stream is open there (the endpoint's SETTINGS are in), the
        # connection is full: the second request needs another.
        from test_health import wait_for
        self.assertIsNotNone(wait_for(lambda: len(origin.streams) == 1, 5))
        second = curl("--http2-prior-knowledge", url)
        self.assertEqual(first.communicate(timeout=10)[0], b"conn 1")
        self.assertEqual(second, b"conn 2")
        self.assertEqual(origin.connections, 2)
        self.assertEqual(sorted(n for n, _ in origin.streams), [1, 2], origin.streams)


class Http2LivenessTest(ProxyTestCase):
    def test_idle_connection_is_probed_and_a_silent_one_replaced(self):
        """An idle upstream connection gets a PING after 10 s; one left unanswered for 5 s is
        closed, and the next request opens a new connection."""
        from harness import config as cfg
        from test_health import wait_for
        origin = RawH2Origin(ack_ping=False)
        self.addCleanup(origin.close)
        sy = self.switchyard(cfg([origin], workers=1, extra_cluster="    protocol: h2c\n"))
        self.assertEqual(request(sy.port)[0], 200)
        self.assertEqual(origin.connections, 1)
        self.assertIsNotNone(wait_for(lambda: origin.pings >= 1, 20), "no PING on idle")
        self.assertIsNotNone(wait_for(lambda: origin.closed >= 1, 20), "silent peer kept")
        self.assertEqual(request(sy.port)[0], 200)
        self.assertEqual(origin.connections, 2)


class Http2FlowControlTest(ProxyTestCase):
    def test_a_client_that_never_reads_costs_bounded_memory(self):
        """20 streams of 50 MB each to a client that never opens its window: switchyard
        forwards 64 KiB per stream and waits (one body buffer each), the endpoint waits on
        TCP, and switchyard's resident memory stays far below what was asked for."""
        a = self.backend("a")
        sy = self.switchyard(config([a], extra_listener="    protocols: [h2, http1]\n"))

        def rss_kb():
            with open(f"/proc/{sy.proc.pid}/status") as f:
                return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

        before = rss_kb()
        s = socket.create_connection(("127.0.0.1", sy.port))
        path = b"/bytes?n=50000000"
        out = PREFACE + frame(4, 0, 0)
        for i in range(20):
            out += frame(1, 0x5, 1 + 2 * i,
                         b"\x82\x86\x04" + bytes([len(path)]) + path + b"\x01\x09127.0.0.1")
        s.sendall(out)
        got = 0
        frames = read_frames(s, lambda f: sum(len(p) for k, _, _, p in f if k == 0) >= 65535, 10)
        got = sum(len(p) for k, _, _, p in frames if k == 0)
        self.assertEqual(got, 65535)  # the connection window, never more
        time.sleep(1.5)               # time to buffer, if it were going to
        grown = rss_kb() - before
        self.assertLess(grown, 32 * 1024, f"RSS grew {grown} KiB")  # 1 GB was asked for
        self.assertEqual(request(sy.port)[0], 200)  # others are served meanwhile
        s.close()


if __name__ == "__main__":
    unittest.main()
