#include "web/peer.h"

#include <fmt/format.h>

#include <charconv>

namespace jg::web {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// ADDR or ADDR/PREFIX. Not parse_source: that one is for grants, and
// refuses loopback, where a reverse proxy on the same host lives.
Result<SourceNet> parse_proxy_net(std::string_view text) {
    const auto slash = text.find('/');
    auto a = parse_addr(text.substr(0, slash));
    if (!a) return err(a.error());
    const int max = is_v4_mapped(*a) ? 32 : 128;
    int prefix = max;
    if (slash != std::string_view::npos) {
        const std::string_view p = text.substr(slash + 1);
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
        if (ec != std::errc() || end != p.data() + p.size() || prefix < 1 || prefix > max)
            return err(fmt::format("the prefix must be a number from 1 to {}", max));
    }
    return SourceNet{*a, prefix};
}

}  // namespace

Result<bool> TrustedProxies::add(std::string_view cidr) {
    auto net = parse_proxy_net(cidr);
    if (!net)
        return err(
            fmt::format("--trusted-proxy {}: {}; give an address or CIDR such as 10.0.0.0/8 or "
                        "127.0.0.1",
                        cidr, net.error()));
    nets_.push_back(*net);
    return true;
}

bool TrustedProxies::contains(std::string_view addr) const {
    auto a = parse_addr(addr);
    if (!a) return false;
    for (const auto& n : nets_)
        if (net_contains(n, *a)) return true;
    return false;
}

Result<std::string> client_address(std::string_view peer, std::string_view forwarded_for,
                                   const TrustedProxies& proxies) {
    auto canonical = [](std::string_view text) -> Result<std::string> {
        auto a = parse_addr(text);
        if (!a) return err(fmt::format("the address {} is not valid", std::string(text)));
        return format_addr(*a);
    };
    if (!proxies.contains(peer) || trim(forwarded_for).empty()) return canonical(peer);
    // Right to left: the last hop was added by the proxy we trust; each
    // trusted hop vouches for the one before it.
    std::string_view rest = forwarded_for;
    for (;;) {
        auto comma = rest.rfind(',');
        std::string_view hop = trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
        auto addr = canonical(hop);
        if (!addr) return err("X-Forwarded-For from a trusted proxy holds something that is not an address");
        if (!proxies.contains(*addr) || comma == std::string_view::npos) return addr;
        rest = rest.substr(0, comma);
    }
}

}  // namespace jg::web
