#pragma once
// How a grant reaches the kernel: the one owner of the three grant maps
// (jg_grants_uid for a local user, jg_grants_addr for one remote host,
// jg_grants_net for a network), keyed by grant_key() from a KernelGrant, and
// of what the programs keep beside them: the bloom filter in front of
// jg_grants_addr, the count of prefix grants and the grant generation in
// jg_config (include/jitgate/abi.h).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/kernel_grant.h"
#include "core/keys.h"
#include "core/result.h"

namespace jg {

struct KernelMaps;
class GrantBloom;

// A map entry no active grant accounts for, removed by reconcile().
struct ForeignGrant {
    std::string principal;  // principal_of(key)
    std::uint16_t port = 0;
    Proto proto = Proto::Tcp;
    std::uint64_t grant_id = 0;  // what the entry claimed
};

struct Reconciled {
    std::vector<std::string> errors;    // grants that could not be written (one sentence each)
    std::vector<ForeignGrant> removed;  // in map order: uid, addr, net
};

class GrantMaps {
public:
    GrantMaps(const KernelMaps& m, GrantBloom& bloom) : m_(&m), bloom_(&bloom) {}
    // Writes g in its map; an error (one sentence) when the map is full.
    Result<bool> put(const KernelGrant& g) const;
    // Removes g's entry, only while it is still g's (a renewal may hold the key now).
    void remove(const KernelGrant& g) const;
    // Makes the maps say exactly `active` (the store is the truth): writes
    // each, calling progress(n) after the n-th, then removes every entry
    // that is not an active grant's id under that very key.
    Reconciled reconcile(const std::vector<KernelGrant>& active,
                         const std::function<void(std::uint64_t)>& progress = {}) const;
    // Rebuilds the bloom filter when removals left it stale (paced by its
    // cost): an error sentence when it could not be.
    Result<bool> refresh_bloom() const;
    // How many grants each map holds at most ([daemon] max_grants).
    std::uint32_t capacity() const;

private:
    Result<bool> write(const KernelGrant& g) const;
    Result<bool> rebuild_bloom() const;
    const KernelMaps* m_;
    GrantBloom* bloom_;
};

}  // namespace jg
