#!/usr/bin/env python3
"""Gatehouse vs Cerbos, side by side, same requests, same concurrency (issue 5).

  bench/compare/compare.py --bench build-perf/bench/loadgen/gatehouse-bench [--memberships N]

Installs the real Cerbos server from npm (@cerbos/cerbos-linux-x64) into a temp dir (or uses
--cerbos-bin), serves bench/compare/cerbos_policies/ (the respondio rules: derived roles for
org/workspace roles, gates incl. SSO, ceilings, manager flags, agent visibility) on loopback
with telemetry off, then runs gatehouse-bench's `cerbos` scenario: 16 connections, one request
in flight each, against Gatehouse (Unix socket, newline JSON; it looks every fact up in its
store) and against Cerbos (HTTP/1.1 keep-alive POST /api/check/resources; the client sends every
attribute — memberships, roles, flags, org status, SSO settings — in the request, as a PEP in
front of Cerbos would have to). Both are driven by the same C++ epoll client; its CPU time is
reported so it can be seen not to be the bottleneck. Every Cerbos decision is compared with
Gatehouse's in-process decision for the same request ("mismatches").

Standard library only (python3, npm on PATH unless --cerbos-bin).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def install_cerbos(tmp):
    print("installing @cerbos/cerbos-linux-x64 from npm into", tmp, file=sys.stderr)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", tmp,
                    "@cerbos/cerbos-linux-x64"], check=True, stdout=sys.stderr)
    d = os.path.join(tmp, "node_modules", "@cerbos", "cerbos-linux-x64")
    for name in os.listdir(d):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise SystemExit("no cerbos binary in " + d)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="path to gatehouse-bench")
    ap.add_argument("--memberships", type=int, default=200000)
    ap.add_argument("--data", help="world dir for gatehouse-bench (reused if it holds the same world)")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--cerbos-bin", help="use this cerbos binary instead of installing from npm")
    ap.add_argument("--json", help="also write the combined JSON here")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="gh_cerbos_")
    cerbos = None
    try:
        binary = args.cerbos_bin or install_cerbos(tmp)
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        port, gport = free_port(), free_port()
        conf = os.path.join(tmp, "conf.yaml")
        with open(conf, "w") as f:
            f.write(f"""server:
  httpListenAddr: "127.0.0.1:{port}"
  grpcListenAddr: "127.0.0.1:{gport}"
storage:
  driver: disk
  disk:
    directory: {os.path.join(HERE, "cerbos_policies")}
    watchForChanges: false
audit:
  enabled: false
telemetry:
  disabled: true
""")
        env = dict(os.environ, CERBOS_NO_TELEMETRY="1")
        log = open(os.path.join(tmp, "cerbos.log"), "w")
        t0 = time.monotonic()
        cerbos = subprocess.Popen([binary, "server", f"--config={conf}", "--log-level=error"],
                                  stdout=log, stderr=log, env=env)
        ready = None
        while time.monotonic() - t0 < 30:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_cerbos/health", timeout=1) as r:
                    if r.status == 200:
                        ready = time.monotonic() - t0
                        break
            except OSError:
                time.sleep(0.01)
        if ready is None:
            raise SystemExit("cerbos did not become healthy; log: " + open(log.name).read())
        idle_rss = proc_kb(cerbos.pid, "VmRSS")

        cmd = [args.bench, "--memberships", str(args.memberships), "--scenarios", "startup,cerbos",
               "--cerbos", f"127.0.0.1:{port}", "--cerbos-pid", str(cerbos.pid),
               "--cerbos-conns", str(args.conns), "--seconds", str(args.seconds), "--json"]
        if args.data:
            cmd += ["--data", args.data]
        print("running", " ".join(cmd), file=sys.stderr)
        r = subprocess.run(cmd, capture_output=True, text=True)
        sys.stderr.write(r.stderr)
        if r.returncode != 0:
            raise SystemExit(f"gatehouse-bench failed ({r.returncode})")
        j = json.loads(r.stdout)
        j["cerbos_server"] = {"version": version, "ready_s": ready, "idle_rss_kb": idle_rss,
                              "rss_after_kb": proc_kb(cerbos.pid, "VmRSS")}
        g, c = j["compare"]["gatehouse"], j["compare"]["cerbos"]

        def row(name, gv, cv, better_low, unit, fmt="{:,.1f}"):
            if gv is None or cv is None:
                ratio = "n/a"
            elif better_low:
                ratio = f"{cv / gv:,.1f}x lower" if gv else "n/a"
            else:
                ratio = f"{gv / cv:,.1f}x higher" if cv else "n/a"
            return f"| {name} | {fmt.format(gv)} {unit} | {fmt.format(cv)} {unit} | {ratio} |"

        w = j["world"]
        lines = [
            f"World: {w['memberships']:,} memberships ({w['users']:,} users, {w['orgs']:,} orgs, "
            f"{w['workspaces']:,} workspaces); {args.conns} connections x 1 request in flight; "
            f"{args.seconds:g} s measured; allow fraction {j['mix']['allow_fraction']:.2f}.",
            f"Cerbos {version}: HTTP/1.1 keep-alive POST /api/check/resources on loopback, every "
            "attribute in the request (the client looked them up). Gatehouse: newline JSON on a Unix "
            "socket, looks up memberships/org/workspace in its store itself.",
            "",
            "| metric | Gatehouse | Cerbos | Gatehouse vs Cerbos |",
            "|---|---|---|---|",
            row("throughput", g["checks_per_s"], c["checks_per_s"], False, "checks/s", "{:,.0f}"),
            row("p50 latency", g["p50_us"], c["p50_us"], True, "µs"),
            row("p99 latency", g["p99_us"], c["p99_us"], True, "µs"),
            row("p99.9 latency", g["p999_us"], c["p999_us"], True, "µs"),
            row("server CPU per check", g.get("server_cpu_us_per_check"),
                c.get("server_cpu_us_per_check"), True, "µs", "{:,.2f}"),
            f"| client CPU per check (same client) | {g['client_cpu_us_per_check']:.2f} µs | "
            f"{c['client_cpu_us_per_check']:.2f} µs | client used {g['client_cpu_s'] / g['seconds'] * 100:.0f}% / "
            f"{c['client_cpu_s'] / c['seconds'] * 100:.0f}% of one vCPU |",
            f"| errors | {g['errors']} | {c['errors']} | |",
            f"| decisions differing from Gatehouse's in-process evaluator | {g.get('mismatches')} of "
            f"{g.get('verified')} | {c.get('mismatches')} of {c.get('verified')} | |",
            f"| server RSS | {j['daemon']['vm_rss_kb'] / 1024:.0f} MiB (anon {j['daemon']['rss_anon_kb'] / 1024:.0f} MiB) | "
            f"{j['cerbos_server']['rss_after_kb'] / 1024:.0f} MiB | |",
            f"| start to ready | {j['startup']['first_answer_ms']:.0f} ms (first answered check) | "
            f"{ready * 1000:.0f} ms (health ok) | |",
        ]
        print("\n".join(lines))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(j, f, indent=2)
    finally:
        if cerbos:
            cerbos.send_signal(signal.SIGTERM)
            try:
                cerbos.wait(10)
            except subprocess.TimeoutExpired:
                cerbos.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
