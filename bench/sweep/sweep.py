#!/usr/bin/env python3
"""Scale sweep (issue 5): the same workload at 10k, 100k, 1M, 10M memberships.

  bench/sweep/sweep.py --bench build-perf/bench/loadgen/gatehouse-bench \
      [--sizes 10000,100000,1000000,10000000] [--root /tmp/gh_sweep] [--keep]

For each size, gatehouse-bench builds (or reuses, under --root/<size>) the world, then measures:
in-process check p50/p99 (store + policy, random access), the daemon's start-to-first-answered-
check time, one-connection ping-pong p50/p99 over the socket with the echo floor of the same
run, the store's size on disk and the daemon's RSS without the file-backed map (RssAnon).
Prints one markdown table; --json writes every raw result.

Page cache: the world was just written/read by the same run, so "first answer" is with a warm
page cache (dropping caches needs root and would disturb the other users of this machine).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench")
    ap.add_argument("--sizes", default="10000,100000,1000000,10000000")
    ap.add_argument("--root", default="/tmp/gh_sweep")
    ap.add_argument("--seconds", type=float, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the worlds under --root")
    ap.add_argument("--json", help="write raw results here")
    ap.add_argument("--from-json", help="only print the table of a previous --json file")
    args = ap.parse_args()

    results = []
    if args.from_json:
        results = json.load(open(args.from_json))
        args.sizes, args.json = "", None
    for n in [int(s) for s in args.sizes.split(",") if s]:
        data = os.path.join(args.root, str(n))
        os.makedirs(data, exist_ok=True)
        cmd = [args.bench, "--memberships", str(n), "--data", data, "--json",
               "--scenarios", "inproc,startup,floor,latency", "--seconds", str(args.seconds)]
        print("running", " ".join(cmd), file=sys.stderr, flush=True)
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True)
        sys.stderr.write(r.stderr)
        if r.returncode != 0:
            print(f"size {n}: gatehouse-bench failed ({r.returncode})", file=sys.stderr)
            continue
        j = json.loads(r.stdout)
        j["wall_s"] = time.monotonic() - t0
        results.append(j)
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)

    if not results:
        sys.exit(1)
    base = results[0]["inproc"]["p50_us"]
    base_sock = results[0]["socket"]["latency_c1_d1"]["p50_us"]
    print("| memberships | users | import s | store MB | in-proc p50 µs | in-proc p99 µs | "
          "p50 vs smallest | socket p50 µs | socket p99 µs | socket p50 vs smallest | "
          "echo floor p50 µs | daemon RssAnon MiB | first answer ms (daemon CPU ms) |")
    print("|" + "---|" * 13)
    for j in results:
        imp = j.get("import", {})
        ip, s = j["inproc"], j["socket"]["latency_c1_d1"]
        imp_s = f"{imp['seconds']:.1f}" if "seconds" in imp else "reused"
        print(f"| {j['world']['memberships']:,} | {j['world']['users']:,} | {imp_s} | "
              f"{j['store_bytes'] / 1e6:,.0f} | "
              f"{ip['p50_us']:.2f} | {ip['p99_us']:.2f} | {ip['p50_us'] / base:.2f} | "
              f"{s['p50_us']:.1f} | {s['p99_us']:.1f} | {s['p50_us'] / base_sock:.2f} | "
              f"{j['floor']['pingpong']['p50_us']:.1f} | {j['daemon']['rss_anon_kb'] / 1024:.1f} | "
              f"{j['startup']['first_answer_ms']:.0f} ({j['startup']['daemon_cpu_ms_at_first_answer']:.0f}) |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
