"""The status page in a real browser (issue 15): Debian's Chromium, headless, opens the admin
listener's /, runs its script against the live JSON endpoints while traffic flows, and the
rendered DOM must hold one row per endpoint of every cluster and a requests-per-second chart
that moved. A screenshot is saved as build/status_page.png for people to look at."""
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import SWITCHYARD, ProxyTestCase, config, request

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags that keep Chromium off the network (only loopback is reachable here) and quiet.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--mute-audio"]
SCREENSHOT = os.path.join(os.path.dirname(os.path.abspath(SWITCHYARD)), "status_page.png")


class StatusPageBrowserTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.assertTrue(os.access(CHROMIUM, os.X_OK),
                        f"{CHROMIUM} missing: `make deps` installs Debian's chromium")
        self.profile = tempfile.mkdtemp(prefix="switchyard-chromium-")
        self.stop_traffic = threading.Event()

    def tearDown(self):
        self.stop_traffic.set()
        super().tearDown()
        shutil.rmtree(self.profile, ignore_errors=True)

    def chromium(self, url, *args, budget_ms=8000):
        # Virtual time: the page's 1 s polls run without the test waiting for them in real time.
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}",
                               f"--virtual-time-budget={budget_ms}", *args, url],
                              capture_output=True, text=True, timeout=120)

    def traffic(self, port):
        deadline = time.monotonic() + 60
        while not self.stop_traffic.is_set() and time.monotonic() < deadline:
            try:
                request(port, path="/echo")
            except OSError:
                pass
            time.sleep(0.005)

    def test_page_renders_every_endpoint_and_a_moving_chart(self):
        backends = [self.backend(f"b{i}") for i in range(3)]
        text = config(backends)
        text += ("  - name: other\n    strategy: least_request\n    endpoints:\n"
                 f"      - address: {backends[0].address}\n")
        sy = self.switchyard(text)
        threading.Thread(target=self.traffic, args=(sy.port,), daemon=True).start()
        url = f"http://127.0.0.1:{sy.admin_port}/"
        run = self.chromium(url, "--dump-dom")
        self.assertEqual(run.returncode, 0, run.stderr[-2000:])
        dom = run.stdout
        self.assertIn("<title>switchyard status</title>", dom)
        sections = re.findall(r'<section class="cluster" data-cluster="([^"]+)">(.*?)</section>',
                              dom, re.S)
        self.assertEqual([name for name, _ in sections], ["app", "other"], dom[-3000:])
        by_name = dict(sections)
        rows = re.findall(r'<tr data-endpoint="([^"]+)">', by_name["app"])
        self.assertEqual(sorted(rows), sorted(b.address for b in backends))
        self.assertEqual(re.findall(r'<tr data-endpoint="([^"]+)">', by_name["other"]),
                         [backends[0].address])
        self.assertEqual(len(re.findall(r">healthy<", by_name["app"])), 3)
        # The app cluster's requests-per-second chart took several samples and saw traffic.
        chart = re.search(r'<canvas[^>]*data-chart="rps"[^>]*data-cluster="app"[^>]*>',
                          by_name["app"]).group(0)
        samples = int(re.search(r'data-samples="(\d+)"', chart).group(1))
        peak = float(re.search(r'data-max="([\d.e+-]+)"', chart).group(1))
        self.assertGreaterEqual(samples, 3, chart)
        self.assertGreater(peak, 0, chart)
        polls = int(re.search(r'<body data-polls="(\d+)"', dom).group(1))
        self.assertGreaterEqual(polls, 4)
        self.assertNotIn("unreachable", re.search(r'<span id="error">(.*?)</span>', dom).group(1))

        if os.path.exists(SCREENSHOT):
            os.unlink(SCREENSHOT)
        shot = self.chromium(url, "--window-size=1280,1000", f"--screenshot={SCREENSHOT}")
        self.assertEqual(shot.returncode, 0, shot.stderr[-2000:])
        self.assertGreater(os.path.getsize(SCREENSHOT), 10000)
        print(f"\nstatus page screenshot: {SCREENSHOT}")


if __name__ == "__main__":
    unittest.main()
