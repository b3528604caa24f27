#!/usr/bin/env bash
# Installs dependencies, builds (RelWithDebInfo, and Release so that -O3's
# warnings fail here, not at a packager's), and runs every test suite:
#   unit (no privilege), bpf (BPF_PROG_TEST_RUN), e2e (netns + cgroups, real users),
# then the unit and e2e suites again under ASan+UBSan, then the libFuzzer
# targets (scripts/fuzz.sh, 45 s each). JITGATE_SKIP_SANITIZERS=1 leaves out
# the ASan+UBSan pass, JITGATE_SKIP_FUZZ=1 the fuzzing.
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

echo "== build (RelWithDebInfo)"
build build
echo "== build (Release: -O3, what packagers and many users build; warnings stay errors)"
# Every target, tests and bench too (2 of the 3 GCC 12 -O3 false positives
# found were in them); about 10 CPU-minutes without ccache, 4 of them the
# product's (`-- jitgated jitgate` would build just that).
build build-release -DCMAKE_BUILD_TYPE=Release
echo "== clang-format check"
bash scripts/format.sh --check

echo "== tests"
ctest --test-dir build --output-on-failure

if [ "${JITGATE_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== build (ASan+UBSan)"
  build build-asan -DCMAKE_BUILD_TYPE=Debug -DJITGATE_SANITIZE=ON
  echo "== tests under ASan+UBSan"
  # dist checks documents against --help and packaging, which sanitizers add
  # nothing to (a minute and more of the 40 the whole run may take).
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -E '^(bpf|dist|dist_install)$'
fi
if [ "${JITGATE_SKIP_FUZZ:-0}" != 1 ]; then
  bash scripts/fuzz.sh
fi
echo "== all suites passed"
