#include "core/keys.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace jg {

std::string_view proto_name(Proto p) { return p == Proto::Tcp ? "tcp" : "udp"; }

Result<Proto> parse_proto(std::string_view text) {
    if (text == "tcp") return Proto::Tcp;
    if (text == "udp") return Proto::Udp;
    return err(fmt::format("unknown protocol '{}': use tcp or udp", text));
}

Result<std::uint16_t> parse_port(std::string_view text) {
    if (text.empty() || text.size() > 5)
        return err(fmt::format("invalid port '{}': give a number from 1 to 65535", text));
    unsigned v = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return err(fmt::format("invalid port '{}': give a number from 1 to 65535", text));
        v = v * 10 + unsigned(c - '0');
    }
    if (v < 1 || v > 65535) return err(fmt::format("invalid port '{}': give a number from 1 to 65535", text));
    return static_cast<std::uint16_t>(v);
}

Result<PortSpec> parse_port_spec(std::string_view text) {
    PortSpec spec;
    auto slash = text.find('/');
    auto port = parse_port(text.substr(0, slash));
    if (!port) return err(port.error());
    spec.port = *port;
    if (slash != std::string_view::npos) {
        auto proto = parse_proto(text.substr(slash + 1));
        if (!proto) return err(proto.error());
        spec.proto = *proto;
        spec.proto_given = true;
    }
    return spec;
}

bool is_v4_mapped(const Addr16& a) {
    static constexpr std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(a.data(), prefix, 12) == 0;
}

Result<Addr16> parse_addr(std::string_view text) {
    Addr16 out{};
    const std::string s(text);
    auto bad = [&] {
        return err(fmt::format("invalid address '{}': give one IPv4 or IPv6 host address", text));
    };
    if (s.empty() || s.size() > INET6_ADDRSTRLEN || s.find('\0') != std::string::npos) return bad();
    in_addr v4{};
    in6_addr v6{};
    if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        out[10] = out[11] = 0xff;
        std::memcpy(out.data() + 12, &v4, 4);
        return out;
    }
    if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
        std::memcpy(out.data(), &v6, 16);
        return out;  // v4-mapped input is already in the stored form
    }
    return bad();
}

std::string format_addr(const Addr16& a) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (is_v4_mapped(a)) {
        inet_ntop(AF_INET, a.data() + 12, buf, sizeof(buf));
    } else {
        inet_ntop(AF_INET6, a.data(), buf, sizeof(buf));
    }
    return buf;
}

namespace {

// Zeroes every bit of `a` past the first `bits` (0..128).
Addr16 mask_addr(const Addr16& a, int bits) {
    Addr16 out{};
    for (int i = 0; i < 16; ++i) {
        const int keep = std::clamp(bits - 8 * i, 0, 8);
        out[i] = static_cast<std::uint8_t>(a[i] & static_cast<std::uint8_t>(0xff00u >> keep));
    }
    return out;
}

int family_bits(bool v4) { return v4 ? 32 : 128; }

// The prefix of `n` counted in the 128-bit Addr16 space.
int addr16_bits(const SourceNet& n) {
    const bool v4 = is_v4(n);
    return (v4 ? 96 : 0) + std::clamp(n.prefix, 0, family_bits(v4));
}

// Ranges a --from network may not fall in (`inside`: no peer sends from
// them, loopback needs no --from, a link-local address names no single host)
// or may not contain (`around`: a network around a link-local range still
// matches a link-local peer on any link; one around ::ffff:0:0/96 matches
// every IPv4 peer, since IPv4 sources are looked up in that form).
struct Refused {
    Addr16 net;
    int bits;  // in the 128-bit space
    const char* what;
    const char* advice;
    bool inside;
    bool around;
};

// `a` is a network's first address and `bits` its prefix, in the 128-bit space.
const Refused* refused_range(const Addr16& a, int bits) {
    static const char* kUnspecified = "no peer sends from it, so give the peer's own address";
    static const char* kLoopback = "local users get access without --from";
    static const char* kGroup = "a peer's connections come from a unicast address, so give that one";
    static const char* kLinkLocal =
        "the same link-local address can be another host on every link, so give the peer's global address";
    static const Refused table[] = {
        {Addr16{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0}, 128, "the unspecified address",
         kUnspecified, true, false},
        {Addr16{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 0}, 104, "a loopback address", kLoopback,
         true, false},
        {Addr16{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 224, 0, 0, 0}, 100, "a multicast address", kGroup,
         true, false},
        {Addr16{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 255, 255, 255, 255}, 128, "the broadcast address",
         kGroup, true, false},
        {Addr16{}, 128, "the unspecified address", kUnspecified, true, false},
        {Addr16{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "the loopback address", kLoopback, true,
         false},
        {Addr16{0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8, "a multicast address", kGroup, true,
         false},
        {Addr16{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0}, 96,
         "the whole IPv4 space (::ffff:0:0/96)", "IPv4 peers are granted by their IPv4 address or network",
         false, true},
        {Addr16{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 169, 254, 0, 0}, 112, "a link-local address",
         kLinkLocal, true, true},
        {Addr16{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10, "a link-local address", kLinkLocal,
         true, true},
    };
    // Where a network both starts inside one range and contains another,
    // the range it starts in is the one named.
    for (const auto& r : table)
        if (r.inside && mask_addr(a, r.bits) == r.net) return &r;
    for (const auto& r : table)
        if (r.around && bits < r.bits && mask_addr(r.net, bits) == a) return &r;
    return nullptr;
}

// Digits only, no leading zero (so "/024" is not a second spelling of "/24").
std::optional<int> parse_prefix_digits(std::string_view t) {
    if (t.empty() || t.size() > 3 || (t.size() > 1 && t[0] == '0')) return std::nullopt;
    int v = 0;
    for (char c : t) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    return v;
}

}  // namespace

bool is_v4(const SourceNet& n) { return is_v4_mapped(n.addr); }

bool is_host(const SourceNet& n) { return n.prefix == family_bits(is_v4(n)); }

Result<SourceNet> parse_source(std::string_view text) {
    const auto slash = text.find('/');
    const std::string_view addr_text = text.substr(0, slash);
    auto addr = parse_addr(addr_text);
    if (!addr)
        return err(fmt::format(
            "invalid source address '{}': give an IPv4 or IPv6 address, or a network as ADDRESS/PREFIX "
            "(203.0.113.7, 2001:db8::/64)",
            text));
    const bool v4 = is_v4_mapped(*addr);
    // A prefix counts in the family the address is written in: ::ffff:a.b.c.d/120 is a.b.c.d/24.
    const bool written_v6 = addr_text.find(':') != std::string_view::npos;
    const int written_max = written_v6 ? 128 : 32;
    int prefix = written_max;
    if (slash != std::string_view::npos) {
        auto p = parse_prefix_digits(text.substr(slash + 1));
        if (!p || *p > written_max)
            return err(
                fmt::format("invalid prefix length in '{}': give a number from 1 to {} without leading zeros "
                            "after the '/'",
                            text, written_max));
        prefix = *p;
    }
    if (v4 && written_v6) {
        if (prefix < 96)
            return err(
                fmt::format("'{}' is an IPv4-mapped network shorter than /96: write it in IPv4 form ({}/N, N "
                            "from 1 to 32)",
                            text, format_addr(*addr)));
        prefix -= 96;
    }
    SourceNet n{*addr, prefix};
    if (prefix == 0)
        return err(fmt::format("'{}' would match every {} address: give one host or a narrower network", text,
                               v4 ? "IPv4" : "IPv6"));
    const SourceNet net{mask_addr(n.addr, addr16_bits(n)), prefix};
    if (net.addr != n.addr)
        return err(fmt::format("{} has host bits set; did you mean {}?", text, format_source(net)));
    if (const Refused* r = refused_range(n.addr, addr16_bits(n))) {
        if (is_host(n)) return err(fmt::format("{} is {}: {}", format_source(n), r->what, r->advice));
        if (mask_addr(n.addr, r->bits) == r->net)
            return err(fmt::format("the network {} begins at {}, which is {}: {}", format_source(n),
                                   format_addr(n.addr), r->what, r->advice));
        return err(fmt::format("the network {} contains {}: {}", format_source(n), r->what, r->advice));
    }
    return n;
}

std::string format_source(const SourceNet& n) {
    if (is_host(n)) return format_addr(n.addr);
    return fmt::format("{}/{}", format_addr(n.addr), n.prefix);
}

jg_uid_key make_uid_key(std::uint32_t uid, std::uint16_t port, Proto proto) {
    jg_uid_key k;
    std::memset(&k, 0, sizeof(k));
    k.uid = uid;
    k.port = port;
    k.proto = static_cast<std::uint8_t>(proto);
    return k;
}

jg_addr_key make_addr_key(const Addr16& addr, std::uint16_t port, Proto proto) {
    jg_addr_key k;
    std::memset(&k, 0, sizeof(k));
    std::memcpy(k.addr, addr.data(), 16);
    k.port = port;
    k.proto = static_cast<std::uint8_t>(proto);
    return k;
}

bool net_contains(const SourceNet& n, const Addr16& a) {
    if (is_v4(n) != is_v4_mapped(a)) return false;
    const int bits = addr16_bits(n);
    return mask_addr(a, bits) == mask_addr(n.addr, bits);
}

jg_net_key make_net_key(const SourceNet& net, std::uint16_t port, Proto proto) {
    const int bits = addr16_bits(net);
    const Addr16 a = mask_addr(net.addr, bits);
    jg_net_key k;
    std::memset(&k, 0, sizeof(k));
    k.prefixlen = static_cast<std::uint32_t>(32 + bits);
    k.port = port;
    k.proto = static_cast<std::uint8_t>(proto);
    std::memcpy(k.addr, a.data(), 16);
    return k;
}

jg_grant_val make_grant_val(std::uint64_t expires_boot_ns, std::uint64_t grant_id) {
    jg_grant_val v;
    std::memset(&v, 0, sizeof(v));
    v.expires_ns = expires_boot_ns;
    v.grant_id = grant_id;
    return v;
}

jg_addr make_local_addr(const Addr16& addr) {
    jg_addr a;
    std::memcpy(a.addr, addr.data(), 16);
    return a;
}

jg_bind_key make_bind_key(std::uint32_t uid, std::uint16_t port, Proto proto) {
    jg_bind_key k;
    std::memset(&k, 0, sizeof(k));
    k.uid = uid;
    k.port = port;
    k.proto = static_cast<std::uint8_t>(proto);
    return k;
}

jg_bind_val make_bind_val(std::uint32_t tcp_below, std::uint32_t udp_below) {
    jg_bind_val v;
    std::memset(&v, 0, sizeof(v));
    v.tcp_below = tcp_below;
    v.udp_below = udp_below;
    return v;
}

jg_local_net_key make_local_net_key(const SourceNet& net) {
    const int bits = addr16_bits(net);
    const Addr16 a = mask_addr(net.addr, bits);
    jg_local_net_key k;
    std::memset(&k, 0, sizeof(k));
    k.prefixlen = static_cast<std::uint32_t>(bits);
    std::memcpy(k.addr, a.data(), 16);
    return k;
}

jg_rl_key make_rl_uid_key(std::uint32_t uid, std::uint16_t port, Proto proto) {
    jg_rl_key k;
    std::memset(&k, 0, sizeof(k));
    std::memcpy(k.addr, &uid, sizeof(uid));
    k.port = port;
    k.proto = static_cast<std::uint8_t>(proto);
    k.kind = JG_RL_UID;
    return k;
}

jg_rl_key make_rl_addr_key(const Addr16& src, std::uint16_t port, Proto proto) {
    jg_rl_key k;
    std::memset(&k, 0, sizeof(k));
    std::memcpy(k.addr, src.data(), 8);
    if (is_v4_mapped(src)) std::memcpy(k.addr + 8, src.data() + 8, 8);
    k.port = port;
    k.proto = static_cast<std::uint8_t>(proto);
    k.kind = JG_RL_ADDR;
    return k;
}

jg_allow_key make_allow_key(const jg_rl_key& who, std::uint64_t grant_id) {
    jg_allow_key k;
    std::memset(&k, 0, sizeof(k));
    k.who = who;
    k.grant_id = grant_id;
    return k;
}

RlPrincipal rl_principal(const jg_rl_key& k) {
    RlPrincipal p;
    // A refused bind is limited per uid, as a local user's denials are.
    if (k.kind == JG_RL_UID || k.kind == JG_RL_BIND) {
        p.is_uid = true;
        std::memcpy(&p.uid, k.addr, sizeof(p.uid));
        return p;
    }
    Addr16 a;
    std::memcpy(a.data(), k.addr, 16);
    // An IPv6 source is limited per /64 (the rest was zeroed).
    p.src = is_v4_mapped(a) ? format_addr(a) : format_addr(a) + "/64";
    return p;
}

RemoteKey make_remote_key(const SourceNet& src, std::uint16_t port, Proto proto) {
    if (is_host(src)) return make_addr_key(src.addr, port, proto);
    return make_net_key(src, port, proto);
}

}  // namespace jg
