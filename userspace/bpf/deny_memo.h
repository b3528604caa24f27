#pragma once
// Private to userspace/bpf: the per-CPU denial memos (jg_deny_memo,
// include/jitgate/abi.h), mapped into the daemon so that it can take a
// memo's count with an atomic exchange, as the programs do.
#include <cstdint>
#include <vector>

#include "core/rl_window.h"
#include "jitgate/abi.h"

namespace jg {

class DenyMemo {
public:
    DenyMemo() = default;
    DenyMemo(const DenyMemo&) = delete;
    DenyMemo& operator=(const DenyMemo&) = delete;
    ~DenyMemo();
    // Maps the array (BPF_F_MMAPABLE); an empty string, or why not.
    std::string attach(int fd);
    // The counts of memos idle at now_ns (CLOCK_MONOTONIC_COARSE), taken:
    // one closed window each.
    std::vector<ClosedWindow> take_idle(std::uint64_t now_ns);

private:
    jg_deny_memo* slots_ = nullptr;
    std::size_t bytes_ = 0;
};

}  // namespace jg
