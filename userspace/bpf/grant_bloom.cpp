#include "bpf/grant_bloom.h"

#include <bpf/bpf.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>

#include "bpf/link.h"
#include "util/log.h"

namespace jg {

namespace {

constexpr std::uint32_t kSlot = 0;

// The filter's entries for a grant map of `entries` (include/jitgate/abi.h,
// JG_BLOOM_SCALE), within the kernel's u32.
std::uint32_t bloom_entries(std::uint32_t entries) {
    const std::uint64_t n = std::uint64_t(entries) * JG_BLOOM_SCALE;
    return std::uint32_t(std::clamp<std::uint64_t>(n, 1, UINT32_MAX));
}

}  // namespace

void GrantBloom::attach(int outer_fd, std::uint32_t entries) {
    outer_fd_ = outer_fd;
    entries_ = entries;
    // An earlier run's filter knows nothing of the grants this run adds.
    withdraw();
}

void GrantBloom::withdraw() {
    if (outer_fd_ >= 0) bpf_map_delete_elem(outer_fd_, &kSlot);
    inner_.reset();
}

void GrantBloom::add(const jg_addr_key& k) {
    if (!inner_) return;
    if (bpf_map_update_elem(inner_.get(), nullptr, &k, BPF_ANY) == 0) return;
    // A filter without this key would hide its grant: out with it.
    log(
        fmt::format("the grant bloom filter could not take a key ({}); the grant map answers alone until it "
                    "is rebuilt",
                    errstr(errno)));
    withdraw();
}

bool GrantBloom::due(std::chrono::steady_clock::time_point now) const {
    if (outer_fd_ < 0 || (inner_ && stale_ == 0)) return false;
    const auto pause =
        std::max<std::chrono::steady_clock::duration>(std::chrono::seconds(1), cost_ * kDutyShare);
    return rebuilds_ == 0 || now - last_ >= pause;
}

Result<bool> GrantBloom::rebuild(const std::vector<jg_addr_key>& keys) {
    const auto start = std::chrono::steady_clock::now();
    last_ = start;  // a failed attempt waits its turn too
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_extra = JG_BLOOM_HASHES);
    unique_fd fresh(bpf_map_create(BPF_MAP_TYPE_BLOOM_FILTER, "jg_bloom", 0, sizeof(jg_addr_key),
                                   bloom_entries(entries_), &opts));
    if (!fresh) return err(fmt::format("create a grant bloom filter: {}", errstr(errno)));
    for (const jg_addr_key& k : keys)
        if (bpf_map_update_elem(fresh.get(), nullptr, &k, BPF_ANY))
            return err(fmt::format("fill the grant bloom filter: {}", errstr(errno)));
    const int fd = fresh.get();
    if (bpf_map_update_elem(outer_fd_, &kSlot, &fd, BPF_ANY))
        return err(fmt::format("install the grant bloom filter: {}", errstr(errno)));
    inner_ = std::move(fresh);
    stale_ = 0;
    ++rebuilds_;
    cost_ = std::chrono::steady_clock::now() - start;
    return true;
}

}  // namespace jg
