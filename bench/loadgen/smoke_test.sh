#!/bin/sh
# Smoke test of gatehouse-bench (CTest): a 10k-membership world, every scenario for half a
# second (after a 0.3 s warm-up). Fails if the tool fails, any reply is an error, or any daemon decision differs
# from the in-process evaluator's decision for the same request. No speed assertions.
set -eu
bench="$1"
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
if ! "$bench" --memberships 10000 --pool 4000 --seconds 0.5 --conns 4 --depth 4 --json >"$out" 2>"$err"; then
  cat "$err"
  exit 1
fi
python3 - "$out" "$err" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
bad = []
for section in ("floor", "socket"):
    for name, r in j.get(section, {}).items():
        if r.get("requests", 0) == 0: bad.append(f"{section}.{name}: no replies")
        if r.get("errors", 0): bad.append(f"{section}.{name}: {r['errors']} errors")
        if r.get("mismatches", 0): bad.append(f"{section}.{name}: {r['mismatches']} mismatches")
        if "failure" in r: bad.append(f"{section}.{name}: {r['failure']}")
rl = j["socket"]["reload_under_load"]
if rl.get("reloads_failed", 0) or rl.get("reloads_ok", 0) == 0: bad.append("reload under load failed")
if j["socket"]["latency_c1_d1"].get("verified", 0) == 0: bad.append("nothing verified")
if not 0.3 < j["mix"]["allow_fraction"] < 0.7: bad.append("allow mix off: %s" % j["mix"]["allow_fraction"])
if not any(k.startswith("userbatch") for k in j["socket"]): bad.append("userbatch did not run")
if j["inproc"]["checks"] == 0: bad.append("in-process loop did nothing")
if "start_ms" not in j["startup"].get("daemon_phases_ms", {}): bad.append("no daemon start-up phases")
if bad:
    print("\n".join(bad)); print(open(sys.argv[2]).read()); sys.exit(1)
print("ok")
PY
