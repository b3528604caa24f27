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

}  // namespace

ActiveGrantKeys::ActiveGrantKeys(const std::vector<KernelGrant>& active) {
    keys_.reserve(active.size());
    by_key_.reserve(active.size());
    for (const KernelGrant& g : active) {
        keys_.emplace_back(g.id, grant_key(g));
        by_key_.push_back(keys_.back().second);
    }
    std::sort(keys_.begin(), keys_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::sort(by_key_.begin(), by_key_.end(), key_less);
}

bool ActiveGrantKeys::names(const GrantKey& key) const {
    return std::binary_search(by_key_.begin(), by_key_.end(), key, key_less);
}

bool ActiveGrantKeys::holds(const GrantKey& key, std::uint64_t grant_id) const {
    const auto id = std::int64_t(grant_id);
    auto it = std::lower_bound(keys_.begin(), keys_.end(), id,
                               [](const auto& e, std::int64_t v) { return e.first < v; });
    if (it == keys_.end() || it->first != id || it->second.index() != key.index()) return false;
    return std::visit(
        [&](const auto& want) {
            return std::memcmp(&want, &std::get<std::decay_t<decltype(want)>>(key), sizeof(want)) == 0;
        },
        it->second);
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
