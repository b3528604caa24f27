#pragma once
// The kernel's record rate limits (jg_deny_rl for denials and refused binds,
// jg_allow_rl for a grant's new flows): closing the windows that went idle,
// so that the decisions they counted after their last record are reported.
#include <cstdint>
#include <vector>

#include "core/rl_window.h"

namespace jg {

struct KernelMaps;
class DenyMemo;

struct ClosedWindows {
    std::vector<ClosedWindow> deny;   // jg_deny_rl
    std::vector<ClosedWindow> allow;  // jg_allow_rl, each with its grant
};

class DenyWindows {
public:
    DenyWindows(const KernelMaps& m, DenyMemo& memo) : m_(&m), memo_(&memo) {}
    // Takes every window idle at now_ns (CLOCK_MONOTONIC_COARSE, the
    // programs' clock) out of both tables, with or without a count: they are
    // not LRU, so they must not fill with old windows.  Returns those that
    // counted decisions not recorded one by one (suppressed > 0), the
    // per-CPU memos' counts among them (added to their principal's window).
    ClosedWindows close_idle(std::uint64_t now_ns) const;

private:
    const KernelMaps* m_;
    DenyMemo* memo_;
};

}  // namespace jg
