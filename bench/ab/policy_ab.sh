#!/usr/bin/env bash
# A/B comparison of policy_bench (or daemon_bench) binaries from two or more build directories
# on a shared, noisy machine.
#
#   bench/ab/policy_ab.sh time  FILTER ROUNDS BUILD_DIR...   # CPU ns: min and median per binary
#   bench/ab/policy_ab.sh instr FILTER BUILD_DIR...          # instructions per call (callgrind)
#
# time: ROUNDS interleaved rounds (each binary once per round, --benchmark_min_time=0.2), so
# load from other processes hits every binary alike; the minimum is the least disturbed run.
# instr: valgrind --tool=callgrind with collection toggled on gatehouse::policy::Evaluate
# (TOGGLE=... to change, e.g. 'gatehouse::policy::ListAllowedActions('), total instructions
# divided by the number of calls into the toggled function. Repeatable to a few instructions.
# Each benchmark binary is run from its build directory (policy_bench finds the example policy
# relative to its own source path). BIN=bench/daemon_bench to compare the daemon suite.
set -euo pipefail
mode=$1; filter=$2; shift 2
bin=${BIN:-bench/policy_bench}
case $mode in
  time)
    rounds=$1; shift
    tmp=$(mktemp)
    for _ in $(seq "$rounds"); do
      for d in "$@"; do
        (cd "$d" && "./$bin" --benchmark_filter="$filter" --benchmark_min_time=0.2 \
           --benchmark_format=json 2>/dev/null) |
          python3 -c 'import json,sys; d=sys.argv[1]
for b in json.load(sys.stdin)["benchmarks"]: print(d, b["name"], b["cpu_time"], b["time_unit"])' "$d" >>"$tmp"
      done
    done
    python3 - "$tmp" <<'PY'
import collections, statistics, sys
r = collections.defaultdict(list)
for line in open(sys.argv[1]):
    d, name, t, unit = line.split()
    r[(name, unit, d)].append(float(t))
for (name, unit, d), v in sorted(r.items()):
    print("%-42s %-28s min %9.1f  median %9.1f %s  (n=%d)" % (name, d, min(v), statistics.median(v), unit, len(v)))
PY
    rm -f "$tmp"
    ;;
  instr)
    toggle=${TOGGLE:-gatehouse::policy::Evaluate(}
    for d in "$@"; do
      out=$(mktemp)
      (cd "$d" && valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect="${toggle}*" \
         "./$bin" --benchmark_filter="$filter\$" --benchmark_min_time="${MINTIME:-0.01}" >/dev/null 2>&1)
      python3 - "$out" "$toggle" "$d" "$filter" <<'PY'
import re, sys
path, toggle, d, name = sys.argv[1:5]
names, total, calls, fn, cfn = {}, 0, 0, "", ""
def resolve(s):
    m = re.match(r"\((\d+)\)(?: (.*))?", s)
    if not m: return s
    if m.group(2): names[m.group(1)] = m.group(2)
    return names.get(m.group(1), "")
for line in open(path):
    if line.startswith("summary:") or line.startswith("totals:"):
        total = total or int(line.split()[1])
    elif line.startswith("fn="): fn = resolve(line[3:].strip())
    elif line.startswith("cfn="): cfn = resolve(line[4:].strip())
    elif line.startswith("calls=") and cfn.startswith(toggle) and not fn.startswith(toggle):
        calls += int(line[6:].split()[0])
print("%-42s %-28s %d instructions / %d calls = %d per call" % (name, d, total, calls, total // max(calls, 1)))
PY
      rm -f "$out"
    done
    ;;
  *) echo "usage: $0 time FILTER ROUNDS DIR... | instr FILTER DIR..." >&2; exit 2 ;;
esac
