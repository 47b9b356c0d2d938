#!/usr/bin/env python3
"""Per-call instruction counts of the check hot path from a callgrind profile.

  valgrind --tool=callgrind --callgrind-out-file=cg.out \
      gatehouse-bench --memberships N --data DIR --scenarios inproc --seconds 0.2 --pool 5000 --map-gb 4
  bench/loadgen/cg_summary.py cg.out

Prints calls, inclusive Ir and Ir per call for the functions a decision goes through (LMDB
read txn renew/reset, the four point reads, the evaluator) and Ir per check.
"""
import collections
import re
import sys

KEYS = ["policy::Evaluate(", "LmdbReadTxn::Renew", "LmdbReadTxn::Reset", "KvReader::GetOrgMember",
        "KvReader::GetOrg(", "KvReader::GetWorkspaceMember", "KvReader::GetWorkspace(",
        "LmdbReadKv::Get(", "mdb_cursor_get", "mdb_cursor_renew", "mdb_txn_renew"]


def main(path):
    names, calls, incl = {}, collections.Counter(), collections.Counter()
    cfn = None
    lines = open(path).read().split("\n")

    def name(s):
        m = re.match(r"\((\d+)\)(?: (.*))?", s)
        if not m:
            return s
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), "?")

    for i, l in enumerate(lines):
        if l.startswith("cfn="):
            cfn = name(l[4:])
        elif l.startswith("fn="):
            name(l[3:])
        elif l.startswith("calls=") and cfn:
            calls[cfn] += int(l.split()[0][6:])
            nxt = lines[i + 1].split()
            incl[cfn] += int(nxt[1]) if len(nxt) > 1 else 0
    checks = 0
    for k in KEYS:
        for fn in calls:
            if k in fn:
                if k == "policy::Evaluate(":
                    checks = calls[fn]
                print(f"{calls[fn]:>9} calls {incl[fn]:>13,} Ir {incl[fn] / calls[fn]:>8,.0f} Ir/call  {fn[:90]}")
    if checks:
        per = sum(incl[fn] for fn in calls
                  if any(k in fn for k in ["policy::Evaluate(", "LmdbReadTxn::Renew", "LmdbReadTxn::Reset"]))
        print(f"checks: {checks}; Renew + Evaluate + Reset: {per / checks:,.0f} Ir per check")


if __name__ == "__main__":
    main(sys.argv[1])
