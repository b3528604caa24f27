#!/usr/bin/env bash
# Runs jitgate's benchmarks (issue 7) and prints the table:
#   scripts/bench.sh [--quick] [--json FILE] [--markdown]
# --quick     fewer rounds and smaller sets, under a minute
# --json FILE also write the figures as JSON
# --markdown  rewrite BENCHMARKS.md even for a --quick run (a full run always does)
#
# Needs root. Installs what is missing (scripts/setup.sh) and builds first.
# Everything runs in private network namespaces, a private child cgroup, a
# private bpffs and temporary directories, all removed on exit (also after a
# failure or Ctrl-C); nothing is attached to the root cgroup and no nftables
# rule is added in the machine's own network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

quick=0 json="" markdown=0
args=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --json) [ $# -ge 2 ] || { echo "bench: --json takes a file" >&2; exit 2; }; json=$2; shift ;;
    --markdown) markdown=1 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown option $1 (use --quick, --json FILE, --markdown)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: needs root (BPF programs, network namespaces, cgroups); run: sudo $0 ${args[*]}" >&2
  exit 1
fi

bash scripts/setup.sh
cmake -S "$ROOT" -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null  # what packagers build, and what test.sh and demo.sh build there
ninja -C build jitgate_bench jitgated jitgate >/dev/null

cg2=$(awk '$9 == "cgroup2" && $4 == "/" { print $5; exit }' /proc/self/mountinfo)
[ -n "$cg2" ] || { echo "bench: no cgroup v2 hierarchy is mounted" >&2; exit 1; }
tmp=$(mktemp -d /tmp/jitgate-bench.XXXXXX)
cg="$cg2/jitgate-bench-$$"
child=""
cleanup() {
  trap - EXIT INT TERM
  [ -n "$child" ] && kill "$child" 2>/dev/null && wait "$child" 2>/dev/null
  if [ -d "$cg" ]; then
    echo 1 > "$cg/cgroup.kill" 2>/dev/null || true
    for _ in $(seq 50); do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
mkdir "$cg"

mode=()
[ $quick = 1 ] && mode=(--quick)
start=$(date +%s)
# Each part runs in the background so that a signal reaches the trap at once.
build/tests/bench/jitgate_bench "${mode[@]}" --cgroup "$cg" --json "$tmp/kernel.json" > "$tmp/kernel.txt" &
child=$!; wait $child; child=""
python3 tests/bench/bench_daemon.py build "${mode[@]}" --json "$tmp/daemon.json" &
child=$!; wait $child || echo "bench: the daemon benchmark failed; its figures are reported as not measured" >&2
child=""
python3 tests/bench/bench_fleet.py build "${mode[@]}" --json "$tmp/fleet.json" &
child=$!; wait $child || echo "bench: the fleet benchmark failed; its figures are reported as not measured" >&2
child=""

python3 tests/bench/bench_notify.py build "${mode[@]}" --json "$tmp/notify.json" &
child=$!; wait $child || echo "bench: the notify benchmark failed; its figures are reported as not measured" >&2
child=""

report=(--command "scripts/bench.sh ${args[*]}")
[ -n "$json" ] && report+=(--json "$json")
if [ $quick = 0 ] || [ $markdown = 1 ]; then report+=(--markdown BENCHMARKS.md); fi
python3 tests/bench/report.py "${report[@]}" "$tmp/kernel.json" "$tmp/daemon.json" "$tmp/fleet.json" \
  "$tmp/notify.json"
echo "bench: done in $(( $(date +%s) - start )) s"
