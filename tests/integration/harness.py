"""Starts the real switchyard binary and real demo_backend processes on 127.0.0.1.

Every process gets an ephemeral port (port 0) and reports the one it got; every wait is bounded
in time; every process started is stopped when its test ends.
"""
import http.client
import os
import queue
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SWITCHYARD = os.environ.get("SWITCHYARD_BIN", os.path.join(ROOT, "build", "switchyard"))
BACKEND = os.environ.get("DEMO_BACKEND_BIN", os.path.join(ROOT, "build", "demo_backend"))
STARTUP_TIMEOUT = 10.0


class Process:
    """A child process whose stdout and stderr lines are collected by reader threads."""

    def __init__(self, args):
        self.args = args
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.stdout = []
        self.stderr = []
        self.readers = []
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            t = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            t.start()
            self.readers.append(t)

    def _pump(self, stream, sink):
        for line in stream:
            sink.append(line)
            self.lines.put(line)

    def wait_for_line(self, pattern, timeout=STARTUP_TIMEOUT):
        """Returns the regex match of the first new line matching pattern, within timeout
        (scaled by time_scale())."""
        timeout *= time_scale()
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            m = regex.search(line)
            if m:
                return m
        raise AssertionError(
            f"no line matching {pattern!r} within {timeout}s from {self.args[0]};\n"
            f"stderr so far:\n{''.join(self.stderr)[-3000:]}")

    def signal(self, signo):
        self.proc.send_signal(signo)

    def wait(self, timeout):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        for t in self.readers:  # the pipes reach EOF once the process is gone
            t.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()


class Backend(Process):
    def __init__(self, name="b", region="local", extra=(), listen="127.0.0.1:0"):
        super().__init__([BACKEND, "--listen", listen, "--name", name,
                          "--region", region, *extra])
        m = self.wait_for_line(r"listening on ([\d.]+):(\d+)")
        self.name = name
        self.port = int(m.group(2))
        self.address = f"127.0.0.1:{self.port}"


class Switchyard(Process):
    """switchyard on a config text; LISTEN and ADMIN placeholders become 127.0.0.1:0."""

    def __init__(self, config_text, args=(), listeners=("ingress",)):
        fd, self.config_path = tempfile.mkstemp(suffix=".yaml", prefix="switchyard-test-")
        with os.fdopen(fd, "w") as f:
            f.write(config_text)
        super().__init__([SWITCHYARD, "--config", self.config_path, *args])
        self.ports = {}
        for name in listeners:
            m = self.wait_for_line(rf"listener '{name}' listening on [\d.]+:(\d+)")
            self.ports[name] = int(m.group(1))
        m = self.wait_for_line(r"admin listening on [\d.]+:(\d+)")
        self.admin_port = int(m.group(1))
        self.wait_for_line(r"serving with")
        self.port = self.ports[listeners[0]]

    def rewrite_config(self, config_text):
        with open(self.config_path, "w") as f:
            f.write(config_text)

    def stop(self):
        super().stop()
        try:
            os.unlink(self.config_path)
        except OSError:
            pass


def config(backends, strategy="round_robin", extra_listener="", extra_cluster="",
           routes=None, top="access_log:\n  enabled: false\n", workers=2):
    """A one-listener, one-cluster config over the given backends."""
    endpoints = "\n".join(f"      - address: {b.address}" for b in backends)
    routes = routes or "      - cluster: app\n"
    return (f"workers: {workers}\n"
            f"drain_timeout: 10s\n"
            f"admin:\n  listen: 127.0.0.1:0\n"
            f"{top}"
            f"listeners:\n"
            f"  - name: ingress\n"
            f"    listen: 127.0.0.1:0\n"
            f"{extra_listener}"
            f"    routes:\n{routes}"
            f"clusters:\n"
            f"  - name: app\n"
            f"    strategy: {strategy}\n"
            f"{extra_cluster}"
            f"    endpoints:\n{endpoints}\n")


def free_port():
    """A port that nothing listens on right now (for a 'dead backend')."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, method="GET", path="/", body=None, headers=None, timeout=10):
    """One request on a fresh connection; returns (status, headers dict lower-cased, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        data = res.read()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, data
    finally:
        conn.close()


def spread(port, n=40, path="/"):
    """n GETs on one keep-alive connection: {backend name (X-Backend-Name): count}; a status
    code stands for a request that did not get a 200."""
    counts = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(n):
        conn.request("GET", path)
        res = conn.getresponse()
        res.read()
        name = res.getheader("X-Backend-Name") if res.status == 200 else str(res.status)
        counts[name] = counts.get(name, 0) + 1
    conn.close()
    return counts


def time_scale():
    """How much longer than on an idle machine a deadline may be: the load average per CPU
    times 1.5 (a machine whose two cores are both busy gets 1.5x; four jobs per core, the
    cap, 4x), at least SWITCHYARD_TEST_TIME_SCALE (default 1). A wait that succeeds returns
    as soon as it does, so a longer deadline costs nothing unless the test is failing."""
    fixed = float(os.environ.get("SWITCHYARD_TEST_TIME_SCALE", "1"))
    per_cpu = os.getloadavg()[0] / (os.cpu_count() or 1)
    return max(fixed, min(4.0, max(1.0, 1.5 * per_cpu)))


def wait_for(predicate, timeout):
    """Polls predicate every 50 ms until timeout (scaled by time_scale()); returns seconds
    taken, or None on timeout."""
    started = time.monotonic()
    timeout *= time_scale()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def raw_exchange(port, data, timeout=5):
    """Sends raw bytes, returns everything read until the server closes or timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


class SocketBackend:
    """A hand-rolled backend for wire-level tests: accepts up to `limit` connections in a
    thread and gives each to handle(conn) (a socket with a 5 s timeout), then closes it."""

    def __init__(self, limit=20):
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(10)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, args=(limit,), daemon=True)
        self.thread.start()

    def _serve(self, limit):
        for _ in range(limit):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.handle(conn)
                except OSError:
                    pass

    def handle(self, conn):
        raise NotImplementedError

    def close(self):
        self.sock.close()


class ProxyTestCase(unittest.TestCase):
    """Tracks processes so that each test stops what it started."""

    def setUp(self):
        self.processes = []

    def tearDown(self):
        for p in reversed(self.processes):
            p.stop()

    def backend(self, *args, **kwargs):
        b = Backend(*args, **kwargs)
        self.processes.append(b)
        return b

    def switchyard(self, config_text, **kwargs):
        s = Switchyard(config_text, **kwargs)
        self.processes.append(s)
        return s
