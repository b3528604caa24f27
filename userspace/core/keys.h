#pragma once
// The one place that packs BPF map keys and values from user-level values.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "core/result.h"
#include "jitgate/abi.h"

namespace jg {

enum class Proto : std::uint8_t { Tcp = JG_PROTO_TCP, Udp = JG_PROTO_UDP };

std::string_view proto_name(Proto p);
Result<Proto> parse_proto(std::string_view text);

// "5432", "5432/tcp", "53/udp" -> port and protocol (tcp when omitted).
struct PortSpec {
    std::uint16_t port = 0;
    Proto proto = Proto::Tcp;
    bool proto_given = false;
};
Result<PortSpec> parse_port_spec(std::string_view text);
Result<std::uint16_t> parse_port(std::string_view text);

// A 16-byte address, network order; IPv4 stored as ::ffff:a.b.c.d.
using Addr16 = std::array<std::uint8_t, 16>;
// Parses an IPv4 or IPv6 host address; IPv4-mapped IPv6 comes out as IPv4.
Result<Addr16> parse_addr(std::string_view text);
std::string format_addr(const Addr16& a);
bool is_v4_mapped(const Addr16& a);

// A remote principal: one host or a network, by source address. `addr` is in
// the Addr16 form (IPv4 as ::ffff:a.b.c.d) with every bit past the prefix
// zero; `prefix` counts in the address's own family: 0..32 for IPv4, 0..128
// for IPv6 (a host is 32 / 128).
struct SourceNet {
    Addr16 addr{};
    int prefix = 0;
    friend bool operator==(const SourceNet&, const SourceNet&) = default;
};
// "203.0.113.7", "2001:db8::7", "::ffff:203.0.113.7" (normalised to IPv4),
// "203.0.113.0/24", "2001:db8::/64". Refuses host bits under the prefix, /0,
// and networks that begin at an unspecified, loopback, multicast or the
// broadcast address, each with one sentence.
Result<SourceNet> parse_source(std::string_view text);
// Canonical text: "203.0.113.7" for a host, "203.0.113.0/24" for a network.
// parse_source(format_source(n)) == n; this is the form stored and shown.
std::string format_source(const SourceNet& n);
bool is_v4(const SourceNet& n);
bool is_host(const SourceNet& n);
// Whether address `a` (Addr16 form) lies in network `n`.
bool net_contains(const SourceNet& n, const Addr16& a);

jg_uid_key make_uid_key(std::uint32_t uid, std::uint16_t port, Proto proto);
jg_addr_key make_addr_key(const Addr16& addr, std::uint16_t port, Proto proto);
// Key of the LPM trie for networks: prefixlen = 32 (port, proto, pad) + the
// prefix in the 128-bit space (96 + p for IPv4); bits past it are zeroed.
jg_net_key make_net_key(const SourceNet& net, std::uint16_t port, Proto proto);
// A remote grant's key: one host goes to jg_grants_addr (a hash, cheaper to
// look up), a wider network to jg_grants_net (the LPM trie).
using RemoteKey = std::variant<jg_addr_key, jg_net_key>;
RemoteKey make_remote_key(const SourceNet& src, std::uint16_t port, Proto proto);
jg_grant_val make_grant_val(std::uint64_t expires_boot_ns, std::uint64_t grant_id);
jg_addr make_local_addr(const Addr16& addr);
// A listed service user of (port, proto), for jg_bind_users.
jg_bind_key make_bind_key(std::uint32_t uid, std::uint16_t port, Proto proto);
// jg_bind_ports[port]: uids below tcp_below (udp_below) may bind TCP (UDP).
jg_bind_val make_bind_val(std::uint32_t tcp_below, std::uint32_t udp_below);

// Key of jg_local_nets (a prefix routed to this host, AnyIP or anycast):
// prefixlen in the 128-bit space (96 + p for IPv4), bits past it zeroed.
jg_local_net_key make_local_net_key(const SourceNet& net);

// Keys of the record rate-limit windows (jg_deny_rl, jg_allow_rl), packed as
// the programs pack them: a local user by uid; a remote source by address,
// an IPv6 source per /64 (one sender owns a whole /64).
jg_rl_key make_rl_uid_key(std::uint32_t uid, std::uint16_t port, Proto proto);
jg_rl_key make_rl_addr_key(const Addr16& src, std::uint16_t port, Proto proto);
jg_allow_key make_allow_key(const jg_rl_key& who, std::uint64_t grant_id);
// Who a window key names, for the daemon's closing record: a uid, or a
// source ("203.0.113.7", "2001:db8:1:2::/64").
struct RlPrincipal {
    bool is_uid = false;
    std::uint32_t uid = 0;
    std::string src;
    bool operator==(const RlPrincipal&) const = default;
};
RlPrincipal rl_principal(const jg_rl_key& k);

}  // namespace jg
