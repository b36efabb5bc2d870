"""The access log never stalls a request: lines go to a bounded buffer that another thread
writes to stdout; when stdout is not read and the buffer fills, lines are dropped and counted
in switchyard_access_log_dropped_total while every request is still served."""
import http.client
import os
import re
import subprocess
import tempfile
import threading
import urllib.request

from harness import SWITCHYARD, ProxyTestCase, config


class StalledStdoutTest(ProxyTestCase):
    def test_requests_served_while_nobody_reads_stdout(self):
        b = self.backend("b")
        cfg = config([b], top="access_log:\n  enabled: true\n")
        fd, path = tempfile.mkstemp(suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(cfg)
        self.addCleanup(os.unlink, path)
        # stdout is a pipe that this test never reads: once its 64 KiB fill up, a blocking
        # write to it would hang whoever makes it.
        proc = subprocess.Popen([SWITCHYARD, "--config", path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.addCleanup(lambda: (proc.kill(), proc.wait(10), proc.stdout.close(),
                                 proc.stderr.close()))
        ports = {}
        ready = threading.Event()

        def pump():
            for line in proc.stderr:
                m = re.search(r"listener 'ingress' listening on [\d.]+:(\d+)", line)
                if m:
                    ports["proxy"] = int(m.group(1))
                m = re.search(r"admin listening on [\d.]+:(\d+)", line)
                if m:
                    ports["admin"] = int(m.group(1))
                if "serving with" in line:
                    ready.set()
        threading.Thread(target=pump, daemon=True).start()
        self.assertTrue(ready.wait(10), "switchyard did not start")
        # 600 log lines of about 4 KiB each: far more than the pipe and the log's buffer hold.
        target = "/" + "x" * 4000
        conn = http.client.HTTPConnection("127.0.0.1", ports["proxy"], timeout=10)
        for _ in range(600):
            conn.request("GET", target)
            res = conn.getresponse()
            res.read()
            self.assertEqual(res.status, 200)
        conn.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['admin']}/metrics", timeout=5) as r:
            text = r.read().decode()
        dropped = int(re.search(r"^switchyard_access_log_dropped_total (\d+)", text, re.M)[1])
        self.assertGreater(dropped, 0)
        self.assertLess(dropped, 600)  # the buffer and the pipe took some
