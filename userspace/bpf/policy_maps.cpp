// What the policy puts in the kernel: the protected ports, who may serve
// them, and the host's network namespace.
#include <fmt/format.h>

#include <cstring>
#include <set>
#include <tuple>

#include "bpf/config_cell.h"
#include "bpf/kernel_parts.h"
#include "bpf/loader.h"

namespace jg {

Result<bool> Kernel::apply_ports(const Policy& p) {
    std::vector<jg_port_val> want(JG_PORT_ENTRIES);
    for (auto& v : want) std::memset(&v, 0, sizeof(v));
    for (const auto& pp : p.ports) {
        std::uint8_t f = JG_PF_PROTECTED | (pp.audit ? JG_PF_AUDIT : 0) | (pp.drain ? JG_PF_DRAIN : 0);
        if (pp.tcp) want[pp.port].tcp = f;
        if (pp.udp) want[pp.port].udp = f;
    }
    for (std::uint32_t port = 0; port < JG_PORT_ENTRIES; ++port) {
        jg_port_val cur{};
        if (p_->maps.ports.lookup(port, cur) == 0 && std::memcmp(&cur, &want[port], sizeof(cur)) == 0)
            continue;
        if (int e = p_->maps.ports.update(port, want[port]))
            return err(fmt::format("write protected port {}: {}", port, errstr(e)));
    }
    return true;
}

Result<bool> Kernel::apply_service_users(const BindRules& rules) {
    if (const std::size_t n = bind_user_entries(rules); n > JG_BIND_USER_ENTRIES)
        return err(
            fmt::format("service_users name {} (user, port) pairs after groups are expanded, more than "
                        "the {} the kernel map holds: list fewer or smaller groups",
                        n, JG_BIND_USER_ENTRIES));
    const jg_bind_val zero_val = make_bind_val(0, 0);
    std::vector<jg_bind_val> want(JG_PORT_ENTRIES, zero_val);
    std::set<std::tuple<std::uint32_t, std::uint16_t, std::uint8_t>> users;
    for (const auto& [key, rule] : rules) {
        auto& v = want[key.first];
        (key.second == Proto::Tcp ? v.tcp_below : v.udp_below) = rule.below;
        for (auto uid : rule.uids) users.insert({uid, key.first, static_cast<std::uint8_t>(key.second)});
    }
    // New entries first, stale ones last: a service user who stays listed
    // is never refused in between.
    for (const auto& [uid, port, proto] : users)
        if (int e = p_->maps.bind_users.update(make_bind_key(uid, port, Proto(proto)), 1);
            e == -E2BIG || e == -ENOMEM)
            return err(fmt::format("the service user map is full ({} entries): list fewer users",
                                   JG_BIND_USER_ENTRIES));
        else if (e)
            return err(fmt::format("write service user {} of port {}: {}", uid, port, errstr(e)));
    // Every entry once (a pinned map may hold an earlier run's), then only
    // the ports this call or the last one described: a reload must not
    // delay the cut of a newly protected port by 65536 look-ups.
    std::set<std::uint32_t> ports;
    if (!p_->bind_ports_written)
        for (std::uint32_t port = 0; port < JG_PORT_ENTRIES; ++port) ports.insert(port);
    else
        ports = *p_->bind_ports_written;
    for (const auto& [key, rule] : rules) ports.insert(key.first);
    std::set<std::uint32_t> written;
    for (std::uint32_t port : ports) {
        jg_bind_val cur{};
        if (std::memcmp(&want[port], &zero_val, sizeof(zero_val)) != 0) written.insert(port);
        if (p_->maps.bind_ports.lookup(port, cur) == 0 && std::memcmp(&cur, &want[port], sizeof(cur)) == 0)
            continue;
        if (int e = p_->maps.bind_ports.update(port, want[port])) {
            p_->bind_ports_written.reset();  // unknown now: look at every entry next time
            return err(fmt::format("write the service users of port {}: {}", port, errstr(e)));
        }
    }
    p_->bind_ports_written = std::move(written);
    std::vector<jg_bind_key> stale;
    p_->maps.bind_users.for_each([&](const jg_bind_key& k, std::uint8_t) {
        if (!users.count({k.uid, k.port, k.proto})) stale.push_back(k);
    });
    for (const auto& k : stale) p_->maps.bind_users.remove(k);
    return true;
}

Result<bool> Kernel::set_host_netns(std::uint64_t cookie) {
    if (int e = update_config(p_->maps.config, [&](jg_config& c) { c.host_netns_cookie = cookie; }))
        return err(fmt::format("write jg_config: {}", errstr(e)));
    return true;
}

}  // namespace jg
