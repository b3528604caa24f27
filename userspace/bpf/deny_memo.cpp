#include "bpf/deny_memo.h"

#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <string>

#include "bpf/link.h"

namespace jg {

namespace {

// The memo's count, as the programs touch it (atomic add, exchange).
std::atomic_ref<std::uint32_t> pending(jg_deny_memo& m) { return std::atomic_ref<std::uint32_t>(m.pending); }

template <typename T>
T read_once(const T& field) {
    return std::atomic_ref<const T>(field).load(std::memory_order_acquire);
}

}  // namespace

DenyMemo::~DenyMemo() {
    if (slots_) munmap(slots_, bytes_);
}

std::string DenyMemo::attach(int fd) {
    const long page = sysconf(_SC_PAGESIZE);
    const std::size_t want = sizeof(jg_deny_memo) * JG_MEMO_SLOTS;
    bytes_ = (want + std::size_t(page) - 1) / std::size_t(page) * std::size_t(page);
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return "map the denial memos (jg_deny_memo): " + errstr(errno);
    slots_ = static_cast<jg_deny_memo*>(p);
    return {};
}

std::vector<ClosedWindow> DenyMemo::take_idle(std::uint64_t now_ns) {
    std::vector<ClosedWindow> out;
    if (!slots_) return out;
    for (std::size_t i = 0; i < JG_MEMO_SLOTS; ++i) {
        jg_deny_memo& m = slots_[i];
        jg_rl_val v{};
        v.window_end_ns = read_once(m.window_end_ns);
        if (read_once(m.pending) == 0 || !window_idle(v, now_ns)) continue;
        jg_rl_key key;
        std::memcpy(&key, &m.key, sizeof(key));
        v.verdict = m.verdict;
        v.hook = m.hook;
        v.suppressed = pending(m).exchange(0);
        if (v.suppressed == 0) continue;
        // The program moved on to another principal meanwhile: what was
        // taken may be its; give it back for the program to report.
        if (read_once(m.window_end_ns) != v.window_end_ns || std::memcmp(&key, &m.key, sizeof(key)) != 0) {
            pending(m).fetch_add(v.suppressed);
            continue;
        }
        out.push_back(deny_window(key, v));
    }
    return out;
}

}  // namespace jg
