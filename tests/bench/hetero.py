#!/usr/bin/env python3
"""The balancing proof (issue 23): ../shared/bench/hetero_bench.sh and failover_bench.sh cases
side by side in one run, HAProxy leastconn, NGINX least_conn and `random two least_conn`
beside switchyard, ratios over HAProxy leastconn's:

  a  5 / 5 / 15 ms fixed                        p99 <= 0.6x at req/s >= 0.97x
  b  5 / 5 / 15 ms, DIST=exp                    p99 <= 0.8x
  c  5 / 5 / 15 ms, b3 fails half at once       client-seen 503s <= 0.2x (no retries)
  d  5 / 5 / 5 ms, b2 stalls 200 ms every 2 s   p99 <= 0.5x
  e  5 / 5 / 5 ms                               p99 <= 1.05x at req/s >= 0.97x
  f  failover_bench.sh FAULT=stop               worst second >= 0.9x base, 0 failed GETs

switchyard runs `resource_aware` (the shared template: load reports, no hedge) in every case
and, where a hedge is what the case is about (b, d, f), also with the README's recommended
route settings (tests/bench/switchyard-hetero-hedge.yaml.tpl, hedge at p95). Usage after
`make`: tests/bench/hetero.sh [--cases "a b c d e f"] [--runs 1] [--duration 15]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared", "bench"))
SY = os.environ.get("SWITCHYARD_BIN", os.path.join(ROOT, "build", "switchyard"))

CASES = {
    "a": {"SERVICE_MS": "5 5 15", "DIST": "fixed"},
    "b": {"SERVICE_MS": "5 5 15", "DIST": "exp"},
    "c": {"SERVICE_MS": "5 5 15", "DIST": "fixed", "BACKEND_EXTRA": "||--fail-fraction 0.5"},
    "d": {"SERVICE_MS": "5 5 5", "DIST": "fixed",
          "BACKEND_EXTRA": "|--stall-ms 200 --stall-every-ms 2000|"},
    "e": {"SERVICE_MS": "5 5 5", "DIST": "fixed"},
}
HEDGED = {"b", "d"}


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def hetero(case, runs, duration, out):
    env = dict(os.environ, **CASES[case], RUNS=str(runs), DURATION=str(duration),
               OUT_DIR=out, CANDIDATE_NAME="switchyard",
               CANDIDATE_CMD=f"{SY} --config {{config}}",
               CANDIDATE_CONFIG_TEMPLATE=os.path.join(SHARED, "switchyard-hetero.yaml.tpl"),
               CANDIDATE_STRATEGIES="resource_aware")
    if case in HEDGED:
        env.update(CANDIDATE2_NAME="switchyard-hedge", CANDIDATE2_CMD=f"{SY} --config {{config}}",
                   CANDIDATE2_CONFIG_TEMPLATE=os.path.join(HERE,
                                                           "switchyard-hetero-hedge.yaml.tpl"),
                   CANDIDATE2_STRATEGIES="resource_aware", CANDIDATE2_VARS="hedge=p95")
    subprocess.run([os.path.join(SHARED, "hetero_bench.sh"), "--targets",
                    "haproxy-lc nginx-lc nginx-p2c"], env=env, stdout=subprocess.DEVNULL,
                   stderr=open(os.path.join(out + ".log"), "w"), check=False, timeout=3600)
    with open(os.path.join(out, "summary.json")) as f:
        rows = json.load(f)["runs"]
    by = {}
    for r in rows:
        by.setdefault(r["target"], []).append(r)
    return {t: {"rps": med([r["rps"] for r in rs]), "p99": med([r["p99"] for r in rs]),
                "raw_p99": med([r["raw_p99"] for r in rs]),
                "non2xx": med([r["non2xx"] for r in rs]),
                "share": {b: med([r["share"].get(b) for r in rs]) for b in ("b1", "b2", "b3")}}
            for t, rs in by.items()}


def poll_hedges(port, stop, seen):
    """Scrapes a candidate's admin /metrics until stop is set; keeps the last hedge counts."""
    import urllib.request
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
                text = r.read().decode()
            for key in ("hedges", "hedge_wins"):
                m = re.search(r"switchyard_upstream_%s_total\{[^}]*\} (\S+)" % key, text)
                if m:
                    seen[key] = max(seen.get(key, 0), float(m.group(1)))
        except OSError:
            pass
        stop.wait(0.2)


def failover(runs, out):
    env = dict(os.environ, FAULT="stop", RUNS=str(runs), OUT_DIR=out, CONNS="64",
               CANDIDATE_NAME="switchyard-hedge", CANDIDATE_CMD=f"{SY} --config {{config}}",
               CANDIDATE_CONFIG_TEMPLATE=os.path.join(HERE, "switchyard-failover-hedge.yaml.tpl"),
               CANDIDATE2_NAME="switchyard", CANDIDATE2_CMD=f"{SY} --config {{config}}",
               CANDIDATE2_CONFIG_TEMPLATE=os.path.join(SHARED, "switchyard-failover.yaml.tpl"))
    import threading
    stop, seen = threading.Event(), {}
    base = int(os.environ.get("BASE_PORT", "18300"))
    poller = threading.Thread(target=poll_hedges, args=(base + 21, stop, seen), daemon=True)
    poller.start()
    subprocess.run([os.path.join(SHARED, "failover_bench.sh"), "--targets", "haproxy nginx"],
                   env=env, stdout=subprocess.DEVNULL, stderr=open(out + ".log", "w"),
                   check=False, timeout=3600)
    stop.set()
    poller.join()
    with open(os.path.join(out, "summary.md")) as f:
        text = f.read()
    return text + (f"\nswitchyard-hedge: {seen.get('hedges', 0):.0f} hedges sent, "
                   f"{seen.get('hedge_wins', 0):.0f} answered by the hedge (last scrape of the "
                   f"last run)\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="a b c d e f")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--out", default=f"/tmp/hetero_matrix/{time.strftime('%Y%m%d-%H%M%S')}")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    results = {}
    for case in a.cases.split():
        print(f"[{time.strftime('%H:%M:%S')}] case {case}", file=sys.stderr, flush=True)
        if case == "f":
            results["f"] = failover(a.runs, os.path.join(a.out, "f"))
        else:
            results[case] = hetero(case, a.runs, a.duration, os.path.join(a.out, case))
    with open(os.path.join(a.out, "matrix.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("| case | proxy | req/s | p99 ms (wrk) | p99 ms (raw) | non-2xx | share b1/b2/b3 % "
          "| req/s vs HAProxy lc | p99 vs HAProxy lc | non-2xx vs HAProxy lc |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for case, res in results.items():
        if case == "f":
            continue
        ref = res.get("haproxy-lc")
        for t, r in res.items():
            ratio = lambda k: (f"{r[k] / ref[k]:.2f}" if ref and ref[k] else  # noqa: E731
                               ("0 / 0" if ref and r[k] == 0 else "-"))
            share = "/".join(f"{r['share'][b]:.1f}" if r["share"][b] is not None else "-"
                             for b in ("b1", "b2", "b3"))
            print(f"| {case} | {t} | {r['rps']:.0f} | {r['p99']:.2f} | {r['raw_p99']:.2f} | "
                  f"{r['non2xx']:.0f} | {share} | {ratio('rps')} | {ratio('p99')} | "
                  f"{ratio('non2xx')} |")
    if "f" in results:
        print("\n### f: failover_bench.sh FAULT=stop\n")
        print(results["f"])
    print(f"\nraw results: {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
