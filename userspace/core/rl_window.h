#pragma once
// A rate-limit window of the kernel (jg_deny_rl, jg_allow_rl) as the daemon
// closes it: the decisions counted after the window's last record, typed,
// so that the closing record is built from fields and not from map bytes.
#include <cstdint>

#include "core/keys.h"
#include "jitgate/abi.h"

namespace jg {

struct ClosedWindow {
    bool allow = false;  // jg_allow_rl: flows allowed under grant_id; else a denial window
    bool bind = false;   // a refused bind's window (kind JG_RL_BIND)
    RlPrincipal who;     // decoded by rl_principal, the one key function
    std::uint16_t port = 0;
    Proto proto = Proto::Tcp;
    std::uint8_t hook = 0;         // JG_HOOK_* of the latest decision (0: unknown)
    std::uint8_t verdict = 0;      // JG_VERDICT_* of the latest denial (deny windows)
    std::uint32_t suppressed = 0;  // decisions not recorded one by one
    std::uint64_t grant_id = 0;    // allow windows: the grant the flows were allowed under
};

// Whether a window is idle at `now_ns` (CLOCK_MONOTONIC_COARSE, the
// programs' clock): no decision for a whole window after its end.
bool window_idle(const jg_rl_val& v, std::uint64_t now_ns);

ClosedWindow deny_window(const jg_rl_key& k, const jg_rl_val& v);
ClosedWindow allow_window(const jg_allow_key& k, const jg_rl_val& v);

}  // namespace jg
