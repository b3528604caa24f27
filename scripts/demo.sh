#!/usr/bin/env bash
# The guided first run: installs, builds, starts jitgated with
# examples/jitgate.toml, and walks through deny -> request -> approve ->
# allow -> expire -> audit trail, narrating each step. Cleans up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PORT=15432
GRANT=20s

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it loads BPF programs): sudo $0" >&2
  exit 1
fi

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
shown() {  # CMD...: as a person would type it (jitgate for "$J", words with spaces quoted)
  local w out=""
  while [ $# -gt 0 ]; do
    w=$1; shift
    if [ "$w" = "$DEMO/jitgate" ] && [ "${1:-}" = --socket ] && [ "${2:-}" = "$SOCK" ]; then
      w=jitgate; shift 2
    fi
    w=${w#"$DEMO/"}
    case $w in *[[:space:]]*) w="\"$w\"" ;; esac
    out+="${out:+ }$w"
  done
  printf '%s' "$out"
}
run_as() {  # run_as USER CMD...: shows and runs a command as USER
  local u=$1; shift
  printf '   \033[36m%s$ %s\033[0m\n' "$u" "$(shown "$@")"
  setpriv --reuid="$u" --regid="$u" --init-groups -- "$@" 2>&1 | sed 's/^/   /' || true
}

bold "1/7 installing dependencies and building (first run takes a few minutes)"
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build jitgated jitgate | tail -1

if ss -Hltnu "sport = :$PORT" | grep -q .; then
  echo "demo: something on this machine already uses port $PORT; stop it or edit examples/jitgate.toml" >&2
  exit 1
fi

DEMO=$(mktemp -d /tmp/jitgate-demo-XXXXXX)
chmod 755 "$DEMO"
BPFFS=/sys/fs/bpf/jitgate-demo
SOCK=$DEMO/jitgate.sock
DAEMON_PID=""
SERVICE_PID=""
cleanup() {
  set +e
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
  "$DEMO/jitgated" --uninstall --bpffs "$BPFFS" --socket "$SOCK" --state-dir "$DEMO/state" >/dev/null 2>&1
  [ -n "$SERVICE_PID" ] && kill "$SERVICE_PID" 2>/dev/null
  userdel jg-demo-dev 2>/dev/null; userdel jg-demo-lead 2>/dev/null
  rm -rf "$DEMO"
}
trap cleanup EXIT INT TERM

cp build/jitgated build/jitgate tests/e2e/probe.py tests/e2e/echo_server.py "$DEMO/"
for u in jg-demo-dev jg-demo-lead; do
  id "$u" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$u"
done
/usr/bin/python3 "$DEMO/echo_server.py" "$PORT" > "$DEMO/service.log" 2>&1 &
SERVICE_PID=$!
J="$DEMO/jitgate --socket $SOCK"
connect() { run_as jg-demo-dev /usr/bin/python3 "$DEMO/probe.py" connect tcp 127.0.0.1 "$PORT"; }

bold "2/7 starting jitgated with examples/jitgate.toml"
"$DEMO/jitgated" --config examples/jitgate.toml --bpffs "$BPFFS" --socket "$SOCK" \
  --state-dir "$DEMO/state" --audit-log "$DEMO/audit.jsonl" --quiet 2> "$DEMO/jitgated.log" &
DAEMON_PID=$!
for _ in $(seq 100); do $J status >/dev/null 2>&1 && break; sleep 0.1; done
$J status | sed 's/^/   /'
say "a demo service listens on 127.0.0.1:$PORT; policy says: closed to everyone, jg-demo-lead approves."
say "below, 'jitgate' is $J, and probe.py (tests/e2e) connects and says ok or why not."

bold "3/7 deny: jg-demo-dev connects without a grant"
connect
say "EPERM straight from the kernel (cgroup/connect4), before any packet is sent."

bold "4/7 request: jg-demo-dev asks for $GRANT with a reason"
run_as jg-demo-dev $J request $PORT --for $GRANT --reason "demo: check replication lag" --ticket DEMO-1
RID=$(setpriv --reuid=jg-demo-dev --regid=jg-demo-dev --init-groups -- $J --json list --pending |
      /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"][0]["request_id"])')
say "jg-demo-dev cannot approve it themselves:"
run_as jg-demo-dev $J approve "$RID"

bold "5/7 approve: jg-demo-lead says yes; the port opens for jg-demo-dev only"
run_as jg-demo-lead $J approve "$RID"
connect
say "and for anyone else it stays closed:"
run_as jg-demo-lead /usr/bin/python3 "$DEMO/probe.py" connect tcp 127.0.0.1 "$PORT"

bold "6/7 expire: the grant ends in the kernel, on time, even if the daemon were dead"
EXP=$(( $(date +%s) + ${GRANT%s} ))
while [ "$(date +%s)" -lt "$EXP" ]; do
  printf '\r   %2ds left ' $(( EXP - $(date +%s) )); sleep 1
done
printf '\r   expired.    \n'
connect

bold "7/7 the audit trail (JSON Lines; every record carries seq and a SHA-256 hash chained to the one before)"
/usr/bin/python3 - "$DEMO/audit.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    who = r.get("user", "")
    extra = {k: r[k] for k in ("port", "grant_id", "request_id", "hook", "reason", "approvers") if k in r}
    print(f"   #{r['seq']:<3} {r['ts']}  {r['type']:<13} {who:<13} {extra}")
PY

bold "done"
say "The demo cleans up now (daemon stopped, programs uninstalled, demo users removed)."
say "To run jitgate for real, from the Debian package (binaries, unit, man pages, completions):"
say "  (cd build && cpack -G DEB) && sudo apt install ./build/jitgate_*.deb"
say "or from the build tree:"
say "  sudo cmake --install build            # jitgated, jitgate"
say "  sudo mkdir -p /etc/jitgate && sudo cp examples/jitgate.toml /etc/jitgate/  # then edit it"
say "  sudo jitgated --config /etc/jitgate/jitgate.toml"
