#include "core/kernel_grant.h"

#include <fmt/format.h>

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
