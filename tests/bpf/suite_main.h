#pragma once
// main() of a BPF suite that needs the loaded skeleton and nothing else:
// skipped (a failure in CI) without root, the skeleton in `skel` while the
// doctest cases run, destroyed after.
#include <doctest/doctest.h>
#include <unistd.h>

#include "fixture.h"
#include "jitgate.skel.h"

namespace jgtest {

inline int run_with_skeleton(int argc, char** argv, jitgate_bpf*& skel) {
    if (geteuid() != 0) return skip("needs root to load BPF programs");
    skel = load_skeleton();
    if (!skel) return 1;
    doctest::Context ctx(argc, argv);
    const int rc = ctx.run();
    jitgate_bpf__destroy(skel);
    skel = nullptr;
    return rc;
}

}  // namespace jgtest
