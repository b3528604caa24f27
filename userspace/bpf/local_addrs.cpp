#include "bpf/local_addrs.h"

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "bpf/skeleton.h"
#include "util/log.h"

namespace jg {

void LocalAddrs::sync_addrs(const std::vector<Addr16>& addrs) const {
    const std::set<Addr16> want(addrs.begin(), addrs.end());
    std::vector<jg_addr> stale;
    m_->local_addrs.for_each([&](const jg_addr& key, std::uint8_t) {
        Addr16 a;
        std::memcpy(a.data(), key.addr, 16);
        if (!want.count(a)) stale.push_back(key);
    });
    for (const auto& s : stale) m_->local_addrs.remove(s);
    for (const auto& a : want)
        if (int e = m_->local_addrs.update(make_local_addr(a), 1))
            log(fmt::format("cannot record local address {}: {}", format_addr(a), std::strerror(-e)));
}

void LocalAddrs::sync_nets(const std::vector<SourceNet>& nets) const {
    auto id = [](const jg_local_net_key& key) {
        Addr16 a;
        std::memcpy(a.data(), key.addr, 16);
        return std::pair(key.prefixlen, a);
    };
    std::map<std::pair<std::uint32_t, Addr16>, jg_local_net_key> want;
    for (const auto& n : nets) {
        const jg_local_net_key key = make_local_net_key(n);
        want[id(key)] = key;
    }
    std::vector<jg_local_net_key> gone;
    m_->local_nets.for_each([&](const jg_local_net_key& key, std::uint8_t) {
        if (!want.count(id(key))) gone.push_back(key);
    });
    for (const auto& g : gone) m_->local_nets.remove(g);
    for (const auto& [_, key] : want)
        if (int e = m_->local_nets.update(key, 1))
            log(fmt::format("cannot record a local route: {}", std::strerror(-e)));
}

}  // namespace jg
