"""What a client sees when the endpoint misbehaves, through each upstream exchange (issue 26):
the HTTP/1.1 exchange (connection per try, framing, parser, splice) and the HTTP/2 exchange (a
stream on a multiplexed connection). Each endpoint below is a real server speaking its protocol
(the HTTP/2 one is python3-h2's state machine) that picks a fault by path: close before or
in the middle of the response, garbage, an unasked-for 101, a bad chunk, a head too large, a
reset stream, a refused one, silence before or after the head, interim heads, trailers, bodies
of every size. A fault before the head is a 502 or 504 with the reason; a fault after it is a
visible truncation (short Content-Length or an unterminated chunked body, then the close)."""
import os
import re
import socket
import sys
import threading
import time
import unittest

try:
    import h2.config
    import h2.connection
    import h2.events
    from h2.errors import ErrorCodes
except ImportError:  # pyenv and friends: Debian's python3 has python3-h2
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", "-m", "unittest", *sys.argv[1:]])
    raise

from harness import ProxyTestCase, config, time_scale

ROUTE = ("      - cluster: app\n"
         "        timeout: 1s\n")


def read_request(c, buf):
    """One request from c (buf: bytes already read): (path, body, rest) or None at EOF."""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            return None
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    path = head.split(b"\r\n")[0].split()[1].decode()
    if re.search(rb"(?i)transfer-encoding: *chunked", head):
        while not rest.endswith(b"0\r\n\r\n"):
            d = c.recv(65536)
            if not d:
                return None
            rest += d
        body = b""
        while True:  # the chunks' data (no extensions or trailers in these tests)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                return path, body, b""
            body, rest = body + rest[:size], rest[size + 2:]
    m = re.search(rb"(?i)content-length: *(\d+)", head)
    n = int(m.group(1)) if m else 0
    while len(rest) < n:
        d = c.recv(65536)
        if not d:
            return None
        rest += d
    return path, rest[:n], rest[n:]


class Origin:
    """A loopback endpoint serving each connection on a thread of its own (_serve)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        raise NotImplementedError


class Http1Origin(Origin):
    """An HTTP/1.1 endpoint whose answer depends on the path (see serve_one)."""

    def _serve(self, c):
        c.settimeout(10)
        buf = b""
        try:
            while True:
                req = read_request(c, buf)
                if req is None:
                    return
                path, body, buf = req
                if not self.serve_one(c, path, body):
                    return
        except OSError:
            pass
        finally:
            c.close()

    @staticmethod
    def serve_one(c, path, body):
        """Answers one request; False closes the connection."""
        ok = b"HTTP/1.1 200 OK\r\n"
        if path == "/ok":
            c.sendall(ok + b"Content-Length: 5\r\n\r\nhello")
        elif path == "/close":
            return False
        elif path == "/garbage":
            c.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            return False
        elif path == "/short":
            c.sendall(ok + b"Content-Length: 100000\r\n\r\n" + b"x" * 1000)
            return False
        elif path == "/short-large":  # past the splice threshold
            c.sendall(ok + b"Content-Length: 1000000\r\n\r\n" + b"x" * 300000)
            return False
        elif path == "/silent":
            time.sleep(3)
            return False
        elif path == "/interim":
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                      + ok + b"Content-Length: 2\r\n\r\nok")
        elif path == "/upgrade":
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n"
                      b"Connection: upgrade\r\n\r\n")
            return False
        elif path == "/bad-chunk":
            c.sendall(ok + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
            return False
        elif path == "/trailers":
            c.sendall(ok + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n"
                      b"0\r\nx-t: 1\r\n\r\n")
        elif path == "/late-body":  # the head, then the body a moment later
            c.sendall(ok + b"Content-Length: 5\r\n\r\n")
            time.sleep(0.2)
            c.sendall(b"hello")
        elif path == "/late-close":  # the head and part of a small body, then the close
            c.sendall(ok + b"Content-Length: 5\r\n\r\nhe")
            time.sleep(0.2)
            return False
        elif path == "/stall-mid":
            c.sendall(ok + b"Content-Length: 100\r\n\r\n" + b"y" * 10)
            time.sleep(3)
            return False
        elif path == "/big":
            c.sendall(ok + b"Content-Length: 1048576\r\n\r\n" + b"z" * 1048576)
        elif path == "/until-close":
            c.sendall(ok + b"Connection: close\r\n\r\nuntil-close")
            return False
        elif path == "/huge-head":
            c.sendall(ok + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n")
            return False
        elif path == "/echo":
            c.sendall(ok + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        elif path == "/once":  # answers, then closes the connection switchyard keeps
            c.sendall(ok + b"Content-Length: 2\r\n\r\nok")
            return False
        else:
            c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return True


class H2Origin(Origin):
    """An h2c endpoint (python3-h2) whose answer depends on the path (see answer)."""

    def _serve(self, c):
        c.settimeout(10)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        c.sendall(conn.data_to_send())
        paths, bodies, pending = {}, {}, {}
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                for ev in conn.receive_data(d):
                    if isinstance(ev, h2.events.RequestReceived):
                        paths[ev.stream_id] = dict(ev.headers)[b":path"].decode()
                        if ev.stream_ended:
                            self.answer(c, conn, ev.stream_id, paths, bodies, pending)
                    elif isinstance(ev, h2.events.DataReceived):
                        bodies[ev.stream_id] = bodies.get(ev.stream_id, b"") + ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                        if ev.stream_ended:
                            self.answer(c, conn, ev.stream_id, paths, bodies, pending)
                for sid in list(pending):  # bodies larger than the window, as it opens
                    data = pending[sid]
                    while data:
                        n = min(len(data), conn.local_flow_control_window(sid),
                                conn.max_outbound_frame_size)
                        if n <= 0:
                            break
                        conn.send_data(sid, data[:n], end_stream=n == len(data))
                        data = data[n:]
                    if data:
                        pending[sid] = data
                    else:
                        del pending[sid]
                c.sendall(conn.data_to_send())
        except Exception:  # the peer went away, or h2 refused a frame: the connection ends
            pass
        finally:
            c.close()

    @staticmethod
    def answer(c, conn, sid, paths, bodies, pending):
        path, body = paths[sid], bodies.get(sid, b"")
        ok = [(":status", "200")]
        if path == "/ok":
            conn.send_headers(sid, ok + [("content-length", "5")])
            conn.send_data(sid, b"hello", end_stream=True)
        elif path == "/reset-mid":
            conn.send_headers(sid, ok)
            conn.send_data(sid, b"m" * 1000)
            c.sendall(conn.data_to_send())
            time.sleep(0.1)
            conn.reset_stream(sid, ErrorCodes.INTERNAL_ERROR)
        elif path == "/reset":
            conn.reset_stream(sid, ErrorCodes.INTERNAL_ERROR)
        elif path == "/refuse":
            conn.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
        elif path == "/silent":
            pass
        elif path == "/stall-mid":
            conn.send_headers(sid, ok + [("content-length", "100")])
            conn.send_data(sid, b"y" * 10)
        elif path == "/trailers":
            conn.send_headers(sid, ok)
            conn.send_data(sid, b"abc")
            conn.send_headers(sid, [("x-t", "1")], end_stream=True)
        elif path == "/interim":
            conn.send_headers(sid, [(":status", "103"), ("link", "</a>")])
            conn.send_headers(sid, ok + [("content-length", "2")])
            conn.send_data(sid, b"ok", end_stream=True)
        elif path == "/echo":
            conn.send_headers(sid, ok + [("content-length", str(len(body)))])
            pending[sid] = body
        elif path == "/big":
            conn.send_headers(sid, ok + [("content-length", str(1 << 20))])
            pending[sid] = b"z" * (1 << 20)
        else:
            conn.send_headers(sid, [(":status", "404")], end_stream=True)
        c.sendall(conn.data_to_send())


def ask(port, raw):
    """Sends raw (one request with Connection: close) and reads to the close: (status,
    headers dict, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10 * time_scale()) as s:
        s.sendall(raw)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


def get(path):
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()


def post(path, body, chunked=False):
    if chunked:
        return (f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                f"Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n").encode() + body + \
            b"\r\n0\r\n\r\n"
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class FaultCases:
    """Cases both exchanges answer alike; subclasses start the origin (self.sy)."""

    def assert_whole(self, path, body):
        status, headers, got = ask(self.sy.port, get(path))
        self.assertEqual(status, 200, path)
        if "content-length" in headers:
            self.assertEqual((len(got), got == body), (len(body), True), path)
        else:  # chunked: the body's bytes, then the last chunk
            self.assertIn(b"0\r\n", got, path)
            self.assertTrue(got.endswith(b"\r\n\r\n"), path)
        return headers, got

    def assert_failed(self, path, status, reason):
        got_status, _, body = ask(self.sy.port, get(path))
        self.assertEqual((got_status, body.decode().strip()), (status, reason), path)

    def assert_truncated(self, path, at_least):
        """The head went out: the client sees fewer bytes than announced, then the close."""
        status, headers, body = ask(self.sy.port, get(path))
        self.assertEqual(status, 200, path)
        if "content-length" in headers:
            self.assertLess(len(body), int(headers["content-length"]), path)
        else:
            self.assertEqual(headers.get("transfer-encoding"), "chunked", path)
            self.assertFalse(body.endswith(b"0\r\n\r\n"), path)
        self.assertGreaterEqual(len(body), at_least, path)

    def test_answers_pass_through(self):
        self.assert_whole("/ok", b"hello")
        self.assert_whole("/interim", b"ok")  # interim heads dropped, the final one forwarded
        self.assert_whole("/big", b"z" * 1048576)
        _, body = self.assert_whole("/trailers", None)
        self.assertTrue(body.startswith(b"3\r\nabc\r\n"), body)
        self.assertIn(b"x-t: 1\r\n", body)  # the endpoint's trailers reach the client
        for body, chunked in ((b"q" * 70000, False), (b"hello", True)):
            status, _, got = ask(self.sy.port, post("/echo", body, chunked))
            self.assertEqual((status, len(got), got == body), (200, len(body), True))

    def test_silence_before_the_head_is_504_and_after_it_a_truncation(self):
        self.assert_failed("/silent", 504, "upstream timeout")
        self.assert_truncated("/stall-mid", 10)
        # The proxy serves the next request as usual.
        self.assert_whole("/ok", b"hello")


class Http1ExchangeFaultsTest(FaultCases, ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.sy = self.switchyard(config([Http1Origin()], routes=ROUTE, workers=1))

    def test_faults_before_the_head_are_502(self):
        self.assert_failed("/close", 502, "upstream connection closed")
        self.assert_failed("/garbage", 502, "invalid response from upstream")
        self.assert_failed("/upgrade", 502, "invalid response from upstream")  # 101 unasked
        self.assert_failed("/huge-head", 502, "invalid response from upstream")

    def test_faults_after_the_head_truncate(self):
        self.assert_truncated("/short", 1000)
        self.assert_truncated("/short-large", 300000)  # the spliced path
        self.assert_truncated("/bad-chunk", 0)
        # A small body held back to go out with its head: what came, then the close.
        self.assert_truncated("/late-close", 2)
        self.assert_whole("/late-body", b"hello")
        status, _, body = ask(self.sy.port, get("/until-close"))  # close-delimited: chunked
        self.assertEqual((status, body), (200, b"b\r\nuntil-close\r\n0\r\n\r\n"))

    def test_a_kept_connection_the_endpoint_closed_is_replaced(self):
        # /once answers and closes the connection switchyard pooled: the next GET and the
        # next POST (which is never sent on a connection not known to be open) still succeed.
        for _ in range(3):
            self.assert_whole("/once", b"ok")
            self.assert_whole("/ok", b"hello")
            status, _, body = ask(self.sy.port, post("/echo", b"abc"))
            self.assertEqual((status, body), (200, b"abc"))


class H2ExchangeFaultsTest(FaultCases, ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.sy = self.switchyard(config([H2Origin()], routes=ROUTE, workers=1,
                                         extra_cluster="    protocol: h2c\n"))

    def test_streams_reset_or_refused_before_the_head_are_502(self):
        self.assert_failed("/reset", 502, "upstream connection closed")
        # Refused: not processed, sent again on another connection (twice at most), then 502.
        self.assert_failed("/refuse", 502, "upstream connection closed")

    def test_a_stream_reset_after_the_head_truncates(self):
        self.assert_truncated("/reset-mid", 1000)
        self.assert_whole("/ok", b"hello")


if __name__ == "__main__":
    unittest.main()
