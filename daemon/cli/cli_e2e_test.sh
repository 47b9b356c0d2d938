#!/usr/bin/env bash
# End-to-end test of the `gatehouse` binary: usage errors, offline import/export/policy commands,
# then a real daemon on a temp socket with the demo world and policies/respondio: checks and
# their exit codes, --explain/--json output, writes, an invitation flow, batch, watch, stats.
# Usage: cli_e2e_test.sh PATH/TO/gatehouse REPO_ROOT
set -uo pipefail

GH="$1"
SRC="$2"
T="$(mktemp -d /tmp/gatehouse_e2e_XXXXXX)"
SOCK="$T/g.sock"
DAEMON_PID=""
FAILS=0

cleanup() {
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -TERM "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
  fi
  rm -rf "$T"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  FAILS=$((FAILS + 1))
}

# expect CODE cmd...: runs the command, checks its exit code; output in $T/out, $T/err.
expect() {
  local want="$1"
  shift
  "$@" >"$T/out" 2>"$T/err"
  local got=$?
  if [ "$got" != "$want" ]; then
    fail "exit $got (want $want): $*"
    sed 's/^/  stdout: /' "$T/out" >&2
    sed 's/^/  stderr: /' "$T/err" >&2
  fi
}

# contains FILE TEXT
contains() {
  if ! grep -qF -- "$2" "$1"; then
    fail "expected '$2' in $(basename "$1"):"
    sed 's/^/  /' "$1" >&2
  fi
}

g() { "$GH" --socket "$SOCK" "$@"; }

# ---- usage and help (exit 2 / 0) ----------------------------------------------------------
expect 2 "$GH"
expect 2 "$GH" frobnicate
contains "$T/err" "unknown command 'frobnicate'"
expect 2 "$GH" check alice org.view
contains "$T/err" "--org or --workspace"
expect 2 "$GH" check alice org.view --org acme --bogus
contains "$T/err" "unknown flag --bogus"
expect 0 "$GH" --help
contains "$T/out" "list-workspaces"
expect 0 "$GH" org invite --help
contains "$T/out" "--grant WORKSPACE:ROLE"
expect 0 "$GH" serve --help
contains "$T/out" "--policy"

# ---- unreachable daemon (exit 3) ----------------------------------------------------------
expect 3 "$GH" --socket "$T/nobody.sock" health
contains "$T/err" "cannot connect"
expect 3 "$GH" --socket "$T/nobody.sock" check alice org.view --org acme

# ---- offline: policy validate / test -------------------------------------------------------
expect 0 "$GH" policy validate "$SRC/policies/respondio"
contains "$T/out" "ok:"
contains "$T/out" "decision programs: "
mkdir -p "$T/badpolicy"
printf 'this: [is not\n  valid yaml\n' >"$T/badpolicy/bad.yaml"
expect 1 "$GH" policy validate "$T/badpolicy"
contains "$T/out" "bad.yaml:"
expect 0 "$GH" policy test "$SRC/policies/respondio"
contains "$T/out" "0 failed"
# A failing suite: each failure is printed with request, expected and actual; exit 1.
cp -r "$SRC/policies/respondio" "$T/pol"
cat >"$T/pol/wrong_test.yaml" <<'EOF'
name: deliberately wrong
fixtures:
  orgs:
    - {id: o1, members: {m1: member}}
tests:
  - name: member deletes org
    request: {user: m1, action: org.delete, org: o1}
    expect: {allow: true}
EOF
expect 1 "$GH" policy test "$T/pol"
contains "$T/out" "FAIL"
contains "$T/out" "member deletes org"
contains "$T/out" "org.delete"
contains "$T/out" "1 failed"

# ---- offline: import ----------------------------------------------------------------------
printf '{"type":"user","user":"x"}\n' >"$T/bad.jsonl"
expect 1 "$GH" import "$T/bad.jsonl" --data "$T/baddata"
contains "$T/err" "bad.jsonl:1: user: missing \"email\""
expect 0 "$GH" import "$SRC/scripts/demo/world.jsonl" --data "$T/data"
contains "$T/out" "imported 65 records"
# Importing the same world again conflicts (users exist): refused, exit 1.
expect 1 "$GH" import "$SRC/scripts/demo/world.jsonl" --data "$T/data"
contains "$T/err" "already exists"

# ---- daemon ---------------------------------------------------------------------------------
"$GH" serve --socket "$SOCK" --data "$T/data" --policy "$SRC/policies/respondio" \
  --min_rev_wait_ms 50 --durable=false --watch_policy=false --log_level warn \
  >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 1 600); do
  g health >/dev/null 2>&1 && break
  sleep 0.05
done
expect 0 g health
contains "$T/out" "serving"

# Decisions: table A and the gates (exit 0 allow, 1 deny).
expect 0 g check alice org.billing.view --org acme
expect 1 g check dave org.billing.view --org acme
expect 0 g check bob org.billing.manage --org acme
expect 1 g check bob workspace.access --workspace acme-sales
expect 1 g check frank data.export --workspace acme-sales --explain
contains "$T/out" "DENY"
expect 0 g check erin data.export --workspace acme-sales --explain
contains "$T/out" "ALLOW"
expect 1 g check zoe org.view --org umbrella --explain
contains "$T/out" "org_suspended"
expect 1 g check walter workspace.access --workspace initech-main --explain
contains "$T/out" "org_locked"
expect 0 g check walter org.billing.view --org initech
expect 1 g check peggy workspace.access --workspace globex-main --explain
contains "$T/out" "sso_required"
expect 0 g check peggy workspace.access --workspace globex-main \
  --auth-method sso --auth-idp okta-globex --auth-age 600
expect 1 g check nosuchuser org.view --org acme
expect 1 g check alice no.such.action --org acme --explain
contains "$T/out" "unknown_action"
# Agent visibility through resource attributes.
expect 1 g check heidi conversation.reply --workspace acme-support \
  --resource-type conversation --attr assignee=ivan
expect 0 g check ivan conversation.reply --workspace acme-support \
  --resource-type conversation --attr assignee=heidi --attr team=t-emea
# --json prints the raw reply.
expect 0 g --json check alice org.view --org acme
contains "$T/out" '"allow":true'
# An error reply makes check exit 3 (stale: min_rev far in the future).
expect 3 g check alice org.view --org acme --min-rev 999999999
contains "$T/err" "stale"

# Lists.
expect 0 g list-actions heidi --workspace acme-support
contains "$T/out" "workspace.access"
expect 0 g list-orgs alice
contains "$T/out" "acme"
contains "$T/out" "globex"
expect 0 g list-workspaces alice --org acme
contains "$T/out" "acme-sales"

# Batch: line numbers, exit 1 when any check denies.
cat >"$T/checks.jsonl" <<'EOF'
{"user":"alice","action":"org.view","org":"acme"}

{"user":"dave","action":"org.billing.view","org":"acme"}
EOF
expect 1 g batch "$T/checks.jsonl"
contains "$T/out" "1	ALLOW"
contains "$T/out" "3	DENY"

# Watch streams changes: start it from the current revision (so no timing matters), then write.
g --json health >"$T/health.json"
REV="$(sed -n 's/.*"rev":\([0-9]*\).*/\1/p' "$T/health.json")"
[ -n "$REV" ] || fail "no rev in health reply: $(cat "$T/health.json")"
g watch --since "${REV:-0}" >"$T/watch.out" 2>"$T/watch.err" &
WATCH_PID=$!

# Writes (operator: this process runs as the daemon's uid).
expect 0 g user register --user nina --email nina@acme.example
expect 0 g user verify-email nina
expect 0 g org create --user nina --org ninaco --name "Nina Co" --workspace nina-ws
contains "$T/out" "ok (rev"
expect 1 g org create --user nina --org ninaco2 --name "Again"   # allowance 1 used up
expect 0 g check nina workspace.access --workspace nina-ws
# Invitation flow, with a policy-checked write on behalf of alice.
expect 0 g org invite --org acme --email oscar@acme.example --role member \
  --grant acme-sales:agent --actor alice
TOKEN="$(sed -n 's/^token: //p' "$T/out")"
[ -n "$TOKEN" ] || fail "org invite printed no token"
expect 0 g user register --user oscar --email oscar@acme.example
expect 0 g user verify-email oscar
expect 1 g check oscar workspace.access --workspace acme-sales
expect 0 g invite accept --user oscar --token "$TOKEN"
expect 0 g check oscar workspace.access --workspace acme-sales
expect 1 g invite accept --user oscar --token "$TOKEN"          # not pending any more
# A member may not invite: the daemon refuses the actor's write (exit 1).
expect 1 g org invite --org acme --email p@acme.example --role member --actor dave
contains "$T/err" "forbidden"
# The last org_admin cannot leave.
expect 1 g org leave --org ninaco --user nina
expect 0 g workspace set-member --workspace acme-sales --user dave --role agent \
  --contact-visibility assigned_only
expect 0 g org members acme
contains "$T/out" "oscar	member	acme-sales:agent"
expect 0 g changes --since 0
contains "$T/out" "org.create"

# The watcher saw the writes.
for _ in $(seq 1 400); do
  grep -q "invite.accept" "$T/watch.out" && break
  sleep 0.05
done
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null
contains "$T/watch.out" "org.create"
contains "$T/watch.out" "invite.accept"

expect 0 g stats

# Export while serving (LMDB readers are fine next to the daemon).
expect 0 "$GH" export --data "$T/data" --out "$T/export.jsonl"
contains "$T/export.jsonl" '"user":"oscar"'
contains "$T/export.jsonl" '"org":"ninaco"'
contains "$T/export.jsonl" '"contact_visibility":"assigned_only"'

# Graceful stop.
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
rc=$?
DAEMON_PID=""
[ "$rc" = 0 ] || { fail "daemon exit status $rc after SIGTERM"; sed 's/^/  daemon: /' "$T/daemon.log" >&2; }

if [ "$FAILS" -ne 0 ]; then
  echo "cli_e2e: $FAILS failure(s)" >&2
  exit 1
fi
echo "cli_e2e: all passed"
