"""Reload under load (issue 15): SIGHUP every 200 ms for 10 s while wrk keeps 64 connections
busy, an endpoint added and removed on alternate reloads. No socket error, no non-2xx, and the
endpoints that stay keep their state (a failing one stays out, counters keep counting)."""
import json
import re
import shutil
import signal
import subprocess
import time
import unittest

from harness import ProxyTestCase, config, free_port
from test_admin_views import admin
from test_health import CHECKS, wait_for

WRK = shutil.which("wrk") or "/usr/bin/wrk"
DURATION_S = 10
PERIOD_S = 0.2


def endpoints(sy):
    doc = json.loads(admin(sy, "GET", "/admin/clusters")[2])
    return doc["version"], {e["address"]: e for e in doc["clusters"][0]["endpoints"]}


class ReloadUnderLoadTest(ProxyTestCase):
    def test_sighup_every_200ms_under_wrk(self):
        self.assertIsNotNone(shutil.which(WRK), "wrk missing: `make deps` installs it")
        stay = [self.backend("a"), self.backend("b")]
        extra = self.backend("c")
        dead = f"127.0.0.1:{free_port()}"  # stays in every config, never answers

        class Dead:
            address = dead
        with_extra = config(stay + [Dead, extra], extra_cluster=CHECKS, workers=2)
        without = config(stay + [Dead], extra_cluster=CHECKS, workers=2)
        sy = self.switchyard(without)
        # The dead endpoint is marked unhealthy by its checks before the load starts.
        self.assertIsNotNone(wait_for(lambda: not endpoints(sy)[1][dead]["healthy"] and
                                      all(endpoints(sy)[1][b.address]["healthy"] for b in stay),
                                      10))
        wrk = subprocess.Popen([WRK, "-t2", "-c64", f"-d{DURATION_S}s", "--latency",
                                f"http://127.0.0.1:{sy.port}/"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        reloads = 0
        samples = []
        started = time.monotonic()
        try:
            while time.monotonic() - started < DURATION_S - 0.5:
                sy.rewrite_config(with_extra if reloads % 2 == 0 else without)
                sy.signal(signal.SIGHUP)
                reloads += 1
                time.sleep(PERIOD_S)
                samples.append(endpoints(sy))
            out, _ = wrk.communicate(timeout=DURATION_S + 30)
        finally:
            if wrk.poll() is None:
                wrk.kill()
        self.assertEqual(wrk.returncode, 0, out)
        total = int(re.search(r"(\d+) requests in", out).group(1))
        self.assertGreater(total, 1000, out)
        self.assertNotIn("Socket errors", out)
        self.assertNotIn("Non-2xx", out)
        # Every reload was applied (signals sent 200 ms apart are not merged).
        self.assertIsNotNone(wait_for(lambda: endpoints(sy)[0] == reloads + 1, 10),
                                      (reloads, endpoints(sy)[0]))
        metrics = admin(sy, "GET", "/metrics")[2]
        self.assertIn(f'switchyard_config_reloads_total{{result="success"}} {reloads}', metrics)
        # State kept: the dead endpoint never came back in, the live ones never dropped out,
        # and their success counters only grew across the reloads.
        last = {b.address: 0 for b in stay}
        for _, eps in samples:
            self.assertFalse(eps[dead]["healthy"])
            for b in stay:
                self.assertTrue(eps[b.address]["healthy"])
                self.assertGreaterEqual(eps[b.address]["successes"], last[b.address])
                last[b.address] = eps[b.address]["successes"]
        self.assertGreater(min(last.values()), total / 4)
        # The added endpoint really came and went.
        present = [extra.address in eps for _, eps in samples]
        self.assertIn(True, present)
        self.assertIn(False, present)
        print(f"\nreload under load: {reloads} reloads, {total} requests, 0 errors, 0 non-2xx")


if __name__ == "__main__":
    unittest.main()
