#include "bpf/deny_windows.h"

#include "bpf/skeleton.h"

namespace jg {

namespace {

// Takes the windows of one table idle at `now` (read and deleted in one step,
// so that a decision counted meanwhile is not lost) and decodes those with a count.
template <typename K, typename Decode>
std::vector<ClosedWindow> close_table(const Map<K, jg_rl_val>& m, std::uint64_t now, Decode decode) {
    std::vector<K> idle;
    m.for_each([&](const K& k, const jg_rl_val& v) {
        if (window_idle(v, now)) idle.push_back(k);
    });
    std::vector<ClosedWindow> out;
    for (const K& k : idle) {
        jg_rl_val v{};
        if (m.take(k, v) == 0 && v.suppressed != 0) out.push_back(decode(k, v));
    }
    return out;
}

}  // namespace

ClosedWindows DenyWindows::close_idle(std::uint64_t now_ns) const {
    ClosedWindows out;
    out.deny = close_table(m_->deny_rl, now_ns,
                           [](const jg_rl_key& k, const jg_rl_val& v) { return deny_window(k, v); });
    out.allow = close_table(m_->allow_rl, now_ns,
                            [](const jg_allow_key& k, const jg_rl_val& v) { return allow_window(k, v); });
    return out;
}

}  // namespace jg
