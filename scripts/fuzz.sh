#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan+UBSan) in
# build-fuzz, and runs each for SECONDS (default 45) on a fresh copy of its
# seed corpus, as many at once as there are CPUs. Fails on any crash, leak,
# sanitizer report, broken property or timeout, naming the reproducer.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]
# Rerun one reproducer:  build-fuzz/tests/fuzz/fuzz_NAME FILE
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-45}
if ! [[ $SECONDS_PER_TARGET =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]  (a whole number of seconds, default 45)" >&2
  exit 2
fi
TARGETS=(protocol policy duration keys audit fleet_docs)
BUILD=$ROOT/build-fuzz
RUNS=$BUILD/fuzz-runs

echo "== fuzz: build (clang, libFuzzer, ASan+UBSan) in build-fuzz"
# A unity build (sources compiled in batches): the same code, built faster.
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja -DJITGATE_FUZZ=ON -DJITGATE_TESTS=OFF -DCMAKE_UNITY_BUILD=ON >/dev/null
ninja -C "$BUILD" fuzz

# run_target NAME: one libFuzzer run; its log, artifacts and exit code under $RUNS/NAME.
run_target() {
  local name=$1 dir=$RUNS/$1 rc=0
  rm -rf "$dir"
  mkdir -p "$dir/corpus"
  cp "$ROOT/tests/fuzz/corpus/$name/"* "$dir/corpus/"
  local dict=()
  [ -f "$ROOT/tests/fuzz/$name.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$name.dict")
  # A fixed seed by default, so that a CI run walks the mutations a green
  # rehearsal walked (as far as time allows); JITGATE_FUZZ_SEED=0 picks a new
  # one each run, for exploring.  The outer timeout only catches a libFuzzer
  # that fails to stop by itself.
  UBSAN_OPTIONS=print_stacktrace=1 timeout --kill-after=10 $((SECONDS_PER_TARGET + 120)) \
    "$BUILD/tests/fuzz/fuzz_$name" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -seed="${JITGATE_FUZZ_SEED:-1}" \
    "${dict[@]}" -artifact_prefix="$dir/" -print_final_stats=1 "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
  echo "$rc" >"$dir/rc"
}

jobs_max=$(nproc)
echo "== fuzz: ${#TARGETS[@]} targets, ${SECONDS_PER_TARGET}s each, $jobs_max at a time"
for name in "${TARGETS[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
  run_target "$name" &
done
wait

failed=0
for name in "${TARGETS[@]}"; do
  dir=$RUNS/$name
  rc=$(cat "$dir/rc" 2>/dev/null || echo "?")
  artifacts=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' \) | sort)
  # libFuzzer's last status line: "#RUNS DONE cov: N ft: N corp: N/SIZE ..."
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/log" | tail -1 || true)
  if [ "$rc" = 0 ] && [ -z "$artifacts" ]; then
    runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$done_line")
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' <<<"$done_line" || true)
    echo "fuzz_$name: ok, ${runs:-?} runs, ${cov:-no coverage line}"
  else
    failed=1
    echo "fuzz_$name: FAILED (exit $rc); log: $dir/log"
    # The report from its first line on: the sanitizer's or the property's
    # words, and of the stack only our own frames; else the log's end.
    report=$(sed -n '/==ERROR\|runtime error\|property broken\|ERROR: libFuzzer\|-- timeout\|out-of-memory/,$p' \
      "$dir/log" | awk '!/^ *#[0-9]/ || /(userspace|tests\/fuzz)\/[^ ]*\.(cpp|h):[0-9]/' | cut -c1-240 | head -30 || true)
    [ -n "$report" ] || report=$(tail -15 "$dir/log")
    while IFS= read -r line; do echo "  $line"; done <<<"$report"
    for a in $artifacts; do
      echo "  reproducer: $a"
      echo "  rerun:      $BUILD/tests/fuzz/fuzz_$name $a"
    done
  fi
done
if [ "$failed" != 0 ]; then
  echo "== fuzz: FAILED (reproducers above; each becomes a seed in tests/fuzz/corpus/NAME and a test in tests/unit)"
  exit 1
fi
echo "== fuzz: all targets passed"
