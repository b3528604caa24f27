#include "core/kernel_grant.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace jg {

Result<KernelGrant> kernel_grant(const GrantRow& g) {
    KernelGrant k;
    k.id = g.id;
    k.uid = g.uid;
    k.port = g.port;
    k.proto = g.proto;
    k.expires_boot_ns = g.expires_boot_ns;
    if (!g.src.empty()) {
        auto net = parse_source(g.src);
        if (!net) return err(fmt::format("grant {} names source {}: {}", g.id, g.src, net.error()));
        k.src = *net;
    }
    return k;
}

GrantKey grant_key(const KernelGrant& g) {
    if (!g.src) return make_uid_key(g.uid, g.port, g.proto);
    return std::visit([](const auto& k) { return GrantKey{k}; }, make_remote_key(*g.src, g.port, g.proto));
}

namespace {

// An order of keys: by map, then by bytes (keys are packed with zeroed
// padding, so equal keys are equal bytes).
bool key_less(const GrantKey& a, const GrantKey& b) {
    if (a.index() != b.index()) return a.index() < b.index();
    return std::visit(
        [&](const auto& x) {
            return std::memcmp(&x, &std::get<std::decay_t<decltype(x)>>(b), sizeof(x)) < 0;
        },
        a);
}

// By key, then by grant id.
bool entry_less(const std::pair<GrantKey, std::int64_t>& a, const std::pair<GrantKey, std::int64_t>& b) {
    if (key_less(a.first, b.first)) return true;
    if (key_less(b.first, a.first)) return false;
    return a.second < b.second;
}

}  // namespace

ActiveGrantKeys::ActiveGrantKeys(const std::vector<KernelGrant>& active) {
    entries_.reserve(active.size());
    for (const KernelGrant& g : active) entries_.emplace_back(grant_key(g), g.id);
    std::sort(entries_.begin(), entries_.end(), entry_less);
}

bool ActiveGrantKeys::names(const GrantKey& key) const {
    const auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                                     [](const auto& e, const GrantKey& k) { return key_less(e.first, k); });
    return it != entries_.end() && !key_less(key, it->first);
}

bool ActiveGrantKeys::holds(const GrantKey& key, std::uint64_t grant_id) const {
    return std::binary_search(entries_.begin(), entries_.end(), std::pair{key, std::int64_t(grant_id)},
                              entry_less);
}

std::string principal_of(const jg_uid_key& k) { return fmt::format("uid {}", k.uid); }

std::string principal_of(const jg_addr_key& k) {
    Addr16 a;
    std::memcpy(a.data(), k.addr, 16);
    return format_addr(a);
}

std::string principal_of(const jg_net_key& k) {
    Addr16 a;
    std::memcpy(a.data(), k.addr, 16);
    return fmt::format("{} prefix {}", format_addr(a), k.prefixlen);
}

}  // namespace jg
