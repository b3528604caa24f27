#include "core/rl_window.h"

namespace jg {

bool window_idle(const jg_rl_val& v, std::uint64_t now_ns) {
    return v.window_end_ns + JG_RL_WINDOW_NS <= now_ns;
}

ClosedWindow deny_window(const jg_rl_key& k, const jg_rl_val& v) {
    ClosedWindow w;
    w.bind = k.kind == JG_RL_BIND;
    w.who = rl_principal(k);
    w.port = k.port;
    w.proto = Proto(k.proto);
    w.hook = v.hook;
    w.verdict = v.verdict;
    w.suppressed = v.suppressed;
    return w;
}

ClosedWindow allow_window(const jg_allow_key& k, const jg_rl_val& v) {
    ClosedWindow w = deny_window(k.who, v);
    w.allow = true;
    w.bind = false;
    w.grant_id = k.grant_id;
    return w;
}

}  // namespace jg
