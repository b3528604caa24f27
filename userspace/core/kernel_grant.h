#pragma once
// A grant as the kernel holds it: who (a local uid, or a remote source host
// or network), which port, until when.  The store keeps the source as text;
// kernel_grant() parses it once, where a row leaves the store, so that the
// map key is built from typed values and never from text again.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/keys.h"
#include "core/result.h"
#include "core/store.h"
#include "jitgate/abi.h"

namespace jg {

struct KernelGrant {
    std::int64_t id = 0;
    std::uint32_t uid = 0;         // a local grant's user (unused when src is set)
    std::optional<SourceNet> src;  // a remote grant's source; none: the local user uid
    std::uint16_t port = 0;
    Proto proto = Proto::Tcp;
    std::uint64_t expires_boot_ns = 0;  // CLOCK_BOOTTIME, what the programs compare
};

// The grant of a stored row; an error (one sentence) when its source text
// does not parse (a store edited by hand).
Result<KernelGrant> kernel_grant(const GrantRow& g);

// Where a grant lives in the kernel: the uid map for a local user, the
// address hash for one remote host, the prefix trie for a network.
using GrantKey = std::variant<jg_uid_key, jg_addr_key, jg_net_key>;
GrantKey grant_key(const KernelGrant& g);

// The keys of the active grants with their ids: a map entry is one of them
// when its grant id is active with this very key (packed the one way keys
// are packed; keys have explicit zeroed padding, so equal keys are equal bytes).
class ActiveGrantKeys {
public:
    explicit ActiveGrantKeys(const std::vector<KernelGrant>& active);
    bool holds(const GrantKey& key, std::uint64_t grant_id) const;
    // Whether some active grant, whatever its id, lives under `key`.
    bool names(const GrantKey& key) const;

private:
    std::vector<std::pair<GrantKey, std::int64_t>> entries_;  // sorted by key, then id (kernel_grant.cpp)
};

// Who a grant-map key names, for a tamper record: "uid 1000",
// "203.0.113.7", "203.0.113.0 prefix 152" (the trie's prefixlen as stored:
// 32 bits of port and protocol, then the address's bits in the 128-bit space).
std::string principal_of(const jg_uid_key& k);
std::string principal_of(const jg_addr_key& k);
std::string principal_of(const jg_net_key& k);

}  // namespace jg
