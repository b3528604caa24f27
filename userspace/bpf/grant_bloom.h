#pragma once
// Private to userspace/bpf: the bloom filter in front of jg_grants_addr
// (include/jitgate/abi.h, jg_grants_bloom).  The programs skip the hash for
// a source the filter does not know, so the filter must hold every key of
// the hash at every moment: a key is added before its grant is written, and
// a filter that may have missed one is taken out (the programs then ask the
// hash) until a new one is built.  A filter cannot forget a key: after
// removals it holds keys the hash no longer does (which costs a lookup, not
// a wrong answer) until rebuild() swaps in a filter of the current keys.
#include <chrono>
#include <cstdint>
#include <vector>

#include "core/result.h"
#include "jitgate/abi.h"
#include "util/unique_fd.h"

namespace jg {

class GrantBloom {
public:
    // The outer map (jg_grants_bloom) and the number of keys a filter is
    // made for (the grant map's size).
    void attach(int outer_fd, std::uint32_t entries);
    // Adds k to the filter in use, before k reaches jg_grants_addr.
    void add(const jg_addr_key& k);
    // A key left jg_grants_addr: the filter is stale until rebuilt.
    void removed() { ++stale_; }
    // Takes the filter out (the programs ask the hash), e.g. while the
    // grant maps are rewritten wholesale.
    void withdraw();
    // Whether a rebuild is due: the filter is stale or missing, and the last
    // rebuild is long enough ago for its cost (at most 1/kDutyShare of the
    // daemon's time goes to rebuilding).
    bool due(std::chrono::steady_clock::time_point now) const;
    // Builds a filter of `keys` and swaps it in.  On failure the old
    // filter (a superset) stays, or none (the hash answers).
    Result<bool> rebuild(const std::vector<jg_addr_key>& keys);
    bool active() const { return bool(inner_); }
    int fd() const { return inner_.get(); }  // the filter in use, -1 if none

    static constexpr int kDutyShare = 20;

private:
    int outer_fd_ = -1;
    std::uint32_t entries_ = 0;
    unique_fd inner_;  // the filter in the outer map's slot, if any
    std::uint64_t stale_ = 0;
    std::uint64_t rebuilds_ = 0;
    std::chrono::steady_clock::time_point last_{};
    std::chrono::steady_clock::duration cost_{};
};

}  // namespace jg
