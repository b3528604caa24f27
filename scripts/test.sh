#!/usr/bin/env bash
# Installs dependencies, builds and runs every test suite, in two builds:
#  - Release (-O3: what packagers and many users build; warnings stay errors):
#    unit, bpf (BPF_PROG_TEST_RUN), the etcd client, packaging (dist, run in the
#    background while the next build compiles: it waits on man, dpkg and apt,
#    not on a CPU), and e2e_local as the release binaries' end-to-end smoke test;
#  - ASan+UBSan (Debug): unit again and every end-to-end suite (netns + cgroups,
#    real users, a private etcd), so that each real path runs once, sanitized;
# then the libFuzzer targets (scripts/fuzz.sh, 30 s each).  One build and one
# run of each end-to-end suite fewer than running everything in both keeps the
# whole run inside CI's 40 minutes on 2 cores, and so do two more choices:
#  - the sanitizer build is a unity build (CMAKE_UNITY_BUILD: several sources
#    compiled as one, each header parsed and its templates made once per batch).
#    The Release build stays one file at a time, as packagers
#    build it, so a missing include still fails CI there;
#  - the sanitized suites run two at a time (ctest -j2).  Each one owns its
#    network namespaces, child cgroup, bpffs mount, users, etcd and ports, and
#    they spend most of their time waiting on timers, not on a CPU.
# JITGATE_SKIP_SANITIZERS=1 runs the end-to-end suites on the Release build
# instead; JITGATE_SKIP_FUZZ=1 leaves out the fuzzing.
# Under CI=true a privileged suite that skips is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

bash scripts/setup.sh

build() {  # build DIR [cmake args...] [-- ninja targets...]
  local dir=$1; shift
  local args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  cmake -S "$ROOT" -B "$dir" -G Ninja "${args[@]}" >/dev/null
  ninja -C "$dir" "$@"
}

echo "== build (Release: -O3; every target, tests and bench too)"
# 2 of the 3 GCC 12 -O3 false positives found were in tests and bench code.
build build -DCMAKE_BUILD_TYPE=Release
echo "== clang-format check"
bash scripts/format.sh --check

echo "== tests (Release)"
ctest --test-dir build --output-on-failure -E '^(e2e_.*|dist|dist_install)$'
sanitized=1
[ "${JITGATE_SKIP_SANITIZERS:-0}" = 1 ] && sanitized=0
if [ "$sanitized" = 1 ]; then
  ctest --test-dir build --output-on-failure -R '^e2e_local$'
else
  ctest --test-dir build --output-on-failure -R '^e2e_'
fi

# Packaging checks, beside the next build; their output follows it.
dist_log=$(mktemp)
trap 'rm -f "$dist_log"' EXIT
ctest --test-dir build --output-on-failure -R '^(dist|dist_install)$' >"$dist_log" 2>&1 &
dist_pid=$!

if [ "$sanitized" = 1 ]; then
  echo "== build (ASan+UBSan)"
  build build-asan -DCMAKE_BUILD_TYPE=Debug -DJITGATE_SANITIZE=ON -DJITGATE_BENCH=OFF -DCMAKE_UNITY_BUILD=ON
fi
echo "== tests (packaging: dist, dist_install)"
dist_rc=0
wait "$dist_pid" || dist_rc=$?
cat "$dist_log"
[ "$dist_rc" = 0 ] || { echo "test.sh: the packaging checks failed" >&2; exit 1; }

if [ "$sanitized" = 1 ]; then
  echo "== tests under ASan+UBSan (unit, bpf_remote, the etcd client and every end-to-end suite)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -j2 --output-on-failure -E '^(bpf|dist|dist_install)$'
fi
if [ "${JITGATE_SKIP_FUZZ:-0}" != 1 ]; then
  bash scripts/fuzz.sh 30
fi
echo "== all suites passed"
