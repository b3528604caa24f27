#!/usr/bin/env bash
# clang-format over our C++ (.clang-format) and BPF C (bpf/.clang-format,
# kernel style). --check fails when a file is not formatted.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=(-i)
[ "${1:-}" = "--check" ] && mode=(--dry-run -Werror)
files=$(git ls-files 'userspace/*.cpp' 'userspace/*.h' 'tests/*.cpp' 'tests/*.h' 'bpf/*.c' 'bpf/*.h' 'include/*.h' 2>/dev/null || true)
[ -z "$files" ] && exit 0
# shellcheck disable=SC2086
clang-format "${mode[@]}" $files
