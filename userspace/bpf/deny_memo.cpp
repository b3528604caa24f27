#include "bpf/deny_memo.h"

#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <string>

#include "bpf/link.h"

namespace jg {

namespace {

// The memo's generation and count, as the programs touch them (atomic add,
// exchange).
std::atomic_ref<std::uint64_t> pending(jg_deny_memo& m) { return std::atomic_ref<std::uint64_t>(m.pending); }

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
        // The word first: a count in it was added after its generation's
        // key was written, so the key read next is that generation's.
        std::uint64_t word = pending(m).load();
        jg_rl_val v{};
        v.window_end_ns = read_once(m.window_end_ns);
        if (JG_MEMO_COUNT(word) == 0 || !window_idle(v, now_ns)) continue;
        jg_rl_key key;
        std::memcpy(&key, &m.key, sizeof(key));
        v.verdict = m.verdict;
        v.hook = m.hook;
        // Takes the count only if neither it nor the generation moved; else
        // the program is at work on this memo: next time.
        if (!pending(m).compare_exchange_strong(word, word & ~std::uint64_t(0xffffffff))) continue;
        v.suppressed = JG_MEMO_COUNT(word);
        out.push_back(deny_window(key, v));
    }
    return out;
}

}  // namespace jg
