#include "bpf/deny_windows.h"

#include <algorithm>

#include "bpf/deny_memo.h"
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
    // The memos first: a count a program moves out of a memo meanwhile
    // lands in its window, which is then still there to be closed.
    std::vector<ClosedWindow> memos = memo_->take_idle(now_ns);
    out.deny = close_table(m_->deny_rl, now_ns,
                           [](const jg_rl_key& k, const jg_rl_val& v) { return deny_window(k, v); });
    for (ClosedWindow& m : memos) {
        auto same = std::find_if(out.deny.begin(), out.deny.end(), [&](const ClosedWindow& w) {
            return !w.allow && w.bind == m.bind && w.who == m.who && w.port == m.port && w.proto == m.proto;
        });
        if (same != out.deny.end())
            same->suppressed += m.suppressed;
        else
            out.deny.push_back(m);
    }
    out.allow = close_table(m_->allow_rl, now_ns,
                            [](const jg_allow_key& k, const jg_rl_val& v) { return allow_window(k, v); });
    return out;
}

}  // namespace jg
