"""The command line: --version, --help, --check and its FILE:LINE:COL diagnostics."""
import os
import re
import subprocess
import tempfile
import unittest

from harness import ROOT, SWITCHYARD


def run(*args, timeout=10):
    p = subprocess.run([SWITCHYARD, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def write(text):
    fd, path = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class CliTest(unittest.TestCase):
    def test_version_and_help(self):
        code, out, _ = run("--version")
        self.assertEqual(code, 0)
        self.assertRegex(out, r"^switchyard \d+\.\d+\.\d+")
        code, out, _ = run("--help")
        self.assertEqual(code, 0)
        for flag in ("--config", "--check", "--log-level", "--version"):
            self.assertIn(flag, out)

    def test_unknown_argument_and_bad_log_level(self):
        self.assertEqual(run("--bogus")[0], 2)
        self.assertEqual(run("--log-level", "loud", "--version")[0], 0)  # version wins early
        code, _, err = run("--log-level", "loud", "--check", "--config",
                           os.path.join(ROOT, "config", "switchyard.yaml"))
        self.assertEqual(code, 2)
        self.assertIn("log-level", err)

    def test_check_accepts_shipped_configs(self):
        for name in ("switchyard.yaml",):
            code, out, err = run("--check", "--config", os.path.join(ROOT, "config", name))
            self.assertEqual(code, 0, err)

    def test_check_reports_every_problem_with_position(self):
        path = write(
            "workers: many\n"                      # line 1: not a number
            "listeners:\n"
            "  - name: in\n"
            "    listen: 127.0.0.1:99999\n"       # line 4: bad port
            "    colour: blue\n"                  # line 5: unknown key
            "    routes:\n"
            "      - cluster: nowhere\n"          # line 7: unknown cluster
            "clusters:\n"
            "  - name: app\n"
            "    strategy: fastest\n"             # line 10: bad enum
            "    endpoints: []\n")                # line 11: empty
        try:
            code, _, err = run("--check", "--config", path)
        finally:
            os.unlink(path)
        self.assertEqual(code, 1)
        lines = err.strip().splitlines()
        expected = [
            (1, 10, "workers", "whole number"),
            (4, 13, "listeners[0].listen", "port"),
            (5, 5, "listeners[0].colour", "unknown key"),
            (7, 18, "listeners[0].routes[0].cluster", "no cluster named 'nowhere'"),
            (10, 15, "clusters[0].strategy", "expected one of"),
            (11, 16, "clusters[0].endpoints", "at least one endpoint"),
        ]
        self.assertEqual(len(lines), len(expected), err)
        for line, (row, col, key, text) in zip(lines, expected):
            m = re.match(r"^(.*\.yaml):(\d+):(\d+): (\S+): (.*)$", line)
            self.assertIsNotNone(m, line)
            self.assertEqual((int(m.group(2)), int(m.group(3)), m.group(4)), (row, col, key), line)
            self.assertIn(text, m.group(5))

    def test_missing_file(self):
        code, _, err = run("--check", "--config", "/nonexistent/switchyard.yaml")
        self.assertEqual(code, 1)
        self.assertIn("/nonexistent/switchyard.yaml:1:1:", err)

    def test_invalid_config_does_not_start(self):
        path = write("listeners: []\n")
        try:
            code, _, err = run("--config", path)
        finally:
            os.unlink(path)
        self.assertEqual(code, 1)
        self.assertIn("not starting", err)
