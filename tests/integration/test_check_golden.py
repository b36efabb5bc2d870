"""`switchyard --check` prints exactly the recorded diagnostics (and exit code) for every
config in check_corpus/: the configuration reader may be reorganised, its output may not
change. To record a new case: add NAME.yaml, run
  build/switchyard --check --config tests/integration/check_corpus/NAME.yaml > ....out 2>&1;
  echo "exit $?" >> ....out   (from the repository root) and review the .out file."""
import glob
import os
import subprocess
import unittest

from harness import ROOT, SWITCHYARD


class CheckGoldenTest(unittest.TestCase):
    def test_diagnostics_are_byte_identical(self):
        cases = sorted(glob.glob(os.path.join(ROOT, "tests/integration/check_corpus/*.yaml")))
        self.assertGreater(len(cases), 5)
        for path in cases:
            rel = os.path.relpath(path, ROOT)
            with self.subTest(rel):
                p = subprocess.run([os.path.abspath(SWITCHYARD), "--check", "--config", rel], cwd=ROOT,
                                   capture_output=True, text=True, timeout=30)
                got = p.stdout + p.stderr + f"exit {p.returncode}\n"
                with open(path[:-len(".yaml")] + ".out") as f:
                    self.assertEqual(got, f.read())
