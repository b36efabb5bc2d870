"""Upgrade (WebSocket and any protocol the endpoint accepts with 101) becomes a byte tunnel."""
import hashlib
import socket
import threading
import time

from harness import ProxyTestCase, config, request


class UpgradeBackend:
    """Answers an Upgrade request with 101, then upper-cases every byte it receives until the
    client half-closes; then it closes. A plain request gets a 200."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(20)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.heads = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, rest = data.split(b"\r\n\r\n", 1)
            self.heads.append(head)
            if b"upgrade: websocket" not in head.lower():
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain")
                return
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\n\r\n" + rest.upper())
            try:
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    conn.sendall(chunk.upper())
            except OSError:
                pass

    def close(self):
        self.sock.close()


UPGRADE = (b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def read_until(sock, marker, timeout=5):
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class UpgradeTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.up = UpgradeBackend()
        self.addCleanup(self.up.close)

    def test_websocket_tunnel_carries_bytes_both_ways(self):
        sy = self.switchyard(config([self.up], extra_listener="    limits: { idle_timeout: 5s }\n"))
        with socket.create_connection(("127.0.0.1", sy.port), timeout=10) as s:
            s.sendall(UPGRADE + b"early")
            head = read_until(s, b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            self.assertIn(b"Upgrade: websocket", head)
            self.assertIn(b"Connection: Upgrade", head)
            rest = head.split(b"\r\n\r\n", 1)[1]
            rest += read_until(s, b"EARLY") if b"EARLY" not in rest else b""
            self.assertEqual(rest, b"EARLY")  # bytes sent right after the head got through
            s.sendall(b"hello")
            self.assertEqual(read_until(s, b"HELLO"), b"HELLO")
            # 1 MiB both ways, intact
            payload = bytes((i * 31) % 26 + 97 for i in range(1 << 20))
            sender = threading.Thread(target=s.sendall, args=(payload,))
            sender.start()
            got = b""
            s.settimeout(10)
            while len(got) < len(payload):
                chunk = s.recv(65536)
                self.assertTrue(chunk, "tunnel closed early")
                got += chunk
            sender.join()
            self.assertEqual(hashlib.sha256(got).hexdigest(),
                             hashlib.sha256(payload.upper()).hexdigest())
            # half-close: the backend sees the end of stream, closes, and so do we
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(read_until(s, b"never"), b"")
        up_head = self.up.heads[0].lower()
        self.assertIn(b"upgrade: websocket", up_head)
        self.assertIn(b"connection: upgrade", up_head)
        self.assertIn(b"sec-websocket-key", up_head)

    def test_idle_tunnel_is_closed_after_idle_timeout(self):
        sy = self.switchyard(config([self.up], extra_listener="    limits: { idle_timeout: 1s }\n"))
        with socket.create_connection(("127.0.0.1", sy.port), timeout=10) as s:
            s.sendall(UPGRADE)
            self.assertTrue(read_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 101"))
            started = time.monotonic()
            self.assertEqual(read_until(s, b"never", timeout=6), b"")
            elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 3.0)

    def test_upgrade_declined_is_a_normal_response(self):
        # Without Upgrade the same backend answers normally; an upgrade offered to a server that
        # answers 200 is just a response (the demo backend ignores Upgrade).
        b = self.backend("plain")
        sy = self.switchyard(config([b]))
        status, headers, body = request(sy.port, "GET", "/echo", headers={
            "Upgrade": "websocket", "Connection": "Upgrade"})
        self.assertEqual(status, 200)
        self.assertIn("upgrade", headers["x-echo-headers"].lower())
