"""The admin port cannot be used against the proxy (issue 22): POST /admin/reload needs the
bearer token of admin.token_file (views do not), a probe address serves only what the kubelet
and Prometheus need, /healthz answers while idle and slow connections fill the admin
connection cap (the longest-waiting is evicted), and the admin server works on its own thread,
never the control thread's."""
import http.client
import os
import re
import socket
import tempfile
import time

from harness import ProxyTestCase, config, request


def call(port, method, path, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read().decode()
    finally:
        conn.close()


class AdminSecurityTest(ProxyTestCase):
    def token_file(self, token):
        fd, path = tempfile.mkstemp(prefix="switchyard-token-")
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        self.addCleanup(os.unlink, path)
        return path

    def test_reload_needs_the_token_and_views_do_not(self):
        b = self.backend("b")
        token = "s3cr3t-t0ken-0123456789"
        path = self.token_file(token)
        text = config([b]).replace("admin:\n  listen: 127.0.0.1:0\n",
                                   f"admin:\n  listen: 127.0.0.1:0\n  token_file: {path}\n")
        sy = self.switchyard(text)
        status, headers, _ = call(sy.admin_port, "POST", "/admin/reload")
        self.assertEqual(status, 401)
        self.assertTrue(headers["www-authenticate"].startswith("Bearer"))
        self.assertEqual(call(sy.admin_port, "POST", "/admin/reload",
                              {"Authorization": "Bearer wrong-token-000000"})[0], 403)
        status, _, body = call(sy.admin_port, "POST", "/admin/reload",
                               {"Authorization": f"Bearer {token}"})
        self.assertEqual(status, 200, body)
        self.assertEqual(call(sy.admin_port, "GET", "/admin/clusters")[0], 200)
        status, _, body = call(sy.admin_port, "GET", "/admin/config")
        self.assertNotIn(token, body)
        self.assertIn(path, body)
        # A token shorter than 16 characters is refused by --check and by a reload.
        with open(path, "w") as f:
            f.write("short\n")
        status, _, body = call(sy.admin_port, "POST", "/admin/reload",
                               {"Authorization": f"Bearer {token}"})
        self.assertEqual(status, 422, body)
        self.assertRegex(body, r"admin\.token_file: the token in .* is shorter than 16")

    def test_probe_address_serves_probes_and_metrics_only(self):
        b = self.backend("b")
        text = config([b]).replace("admin:\n  listen: 127.0.0.1:0\n",
                                   "admin:\n  listen: 127.0.0.1:0\n  probe_listen: 127.0.0.1:0\n")
        sy = self.switchyard(text)
        m = re.search(r"admin probes listening on [\d.]+:(\d+)", "".join(sy.stderr))
        self.assertIsNotNone(m, "".join(sy.stderr))
        probes = int(m.group(1))
        for path in ("/healthz", "/readyz", "/metrics"):
            self.assertEqual(call(probes, "GET", path)[0], 200, path)
        for method, path in (("GET", "/admin/clusters"), ("GET", "/admin/config"),
                             ("GET", "/"), ("POST", "/admin/reload")):
            self.assertEqual(call(probes, method, path)[0], 404, path)
        self.assertEqual(call(sy.admin_port, "GET", "/admin/clusters")[0], 200)

    def test_probes_answer_while_idle_and_slow_connections_fill_the_cap(self):
        b = self.backend("b")
        sy = self.switchyard(config([b]))
        held = []
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", sy.admin_port), timeout=5)
            if i % 2:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
            held.append(s)
        for _ in range(10):
            t0 = time.monotonic()
            status, _, _ = call(sy.admin_port, "GET", "/readyz", timeout=2)
            self.assertEqual(status, 200)
            self.assertLess(time.monotonic() - t0, 1.0)
        # The cap holds: at most 64 of the held connections are still open.
        still_open = 0
        for s in held:
            s.setblocking(False)
            try:
                still_open += s.recv(1) != b""
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
            s.close()
        self.assertLessEqual(still_open, 64)
        self.assertGreaterEqual(still_open, 40)  # the newest were kept, not all dropped

    def test_the_admin_server_works_on_its_own_thread(self):
        # 1,500 /metrics and /admin/clusters renders cost CPU on sy-admin and none to speak of
        # on the main thread, which runs the control loop (health checks, breaker, reloads).
        backends = [self.backend(f"b{i}") for i in range(3)]
        sy = self.switchyard(config(backends))
        pid = sy.proc.pid

        def cpu_by_thread():
            out = {}
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    stat = f.read()
                name = stat[stat.index("(") + 1:stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2:].split()
                out[(int(tid), name)] = int(fields[11]) + int(fields[12])  # utime + stime
            return out

        before = cpu_by_thread()
        conn = http.client.HTTPConnection("127.0.0.1", sy.admin_port, timeout=10)
        for i in range(1500):
            conn.request("GET", "/metrics" if i % 2 else "/admin/clusters")
            conn.getresponse().read()
        conn.close()
        after = cpu_by_thread()
        delta = {k: after[k] - before.get(k, 0) for k in after}
        admin_ticks = sum(v for (tid, name), v in delta.items() if name == "sy-admin")
        control_ticks = sum(v for (tid, name), v in delta.items() if tid == pid)
        self.assertGreaterEqual(admin_ticks, 5, delta)
        self.assertLess(control_ticks * 5, admin_ticks, delta)
        self.assertEqual(request(sy.port)[0], 200)
