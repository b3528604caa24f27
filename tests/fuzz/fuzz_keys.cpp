// libFuzzer: the port, protocol, address and source parsers of core/keys.h
// (`request 5432/tcp --from 203.0.113.0/24`, the wire's "from", the store's
// src) on arbitrary text. What a parser accepts must be in range, and must
// come back the same through its formatter: format(parse(x)) parses to the
// same value and formats to the same text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "check.h"
#include "core/keys.h"

using namespace jg;

namespace {

void port(std::string_view in) {
    auto p = parse_port(in);
    bool digits = !in.empty() && in.size() <= 5;
    unsigned v = 0;
    for (char c : in) {
        digits = digits && c >= '0' && c <= '9';
        if (digits) v = v * 10 + unsigned(c - '0');
    }
    const bool want = digits && v >= 1 && v <= 65535;
    JG_CHECK(p.ok() == want, in, "parse_port accepts exactly 1 to 5 digits from 1 to 65535");
    if (!p) return;
    JG_CHECK(*p == v, in, "parse_port's value");
    auto again = parse_port(std::to_string(*p));
    JG_CHECK(again && *again == *p, in, "parse_port(to_string(port))");
}

void port_spec(std::string_view in) {
    auto s = parse_port_spec(in);
    if (!s) return;
    JG_CHECK(s->port >= 1, in, "a port spec's port is 1-65535");
    JG_CHECK(s->proto_given == (in.find('/') != std::string_view::npos), in, "proto_given means a '/PROTO'");
    const std::string text =
        std::to_string(s->port) + (s->proto_given ? "/" + std::string(proto_name(s->proto)) : "");
    auto again = parse_port_spec(text);
    JG_CHECK(
        again && again->port == s->port && again->proto == s->proto && again->proto_given == s->proto_given,
        in, "parse_port_spec(format) is the same spec: " + text);
}

void proto(std::string_view in) {
    auto p = parse_proto(in);
    JG_CHECK(p.ok() == (in == "tcp" || in == "udp"), in, "parse_proto accepts tcp and udp only");
    if (p) JG_CHECK(proto_name(*p) == in, in, "proto_name(parse_proto(x)) == x");
}

void addr(std::string_view in) {
    auto a = parse_addr(in);
    if (!a) return;
    const std::string text = format_addr(*a);
    auto again = parse_addr(text);
    JG_CHECK(again.ok(), in, "format_addr's text '" + text + "' parses");
    JG_CHECK(*again == *a, in, "parse_addr(format_addr(a)) == a, text '" + text + "'");
    JG_CHECK(format_addr(*again) == text, in, "format_addr is canonical: " + text);
}

int family_bits(const SourceNet& n) { return is_v4(n) ? 32 : 128; }

void source(std::string_view in) {
    auto n = parse_source(in);
    if (!n) {
        JG_CHECK(in.find('/') != std::string_view::npos || !parse_addr(in) ||
                     !parse_source(format_addr(*parse_addr(in))),
                 in, "an address parse_addr accepts is a source, or refused as such in canonical form too");
        return;
    }
    const std::string detail = "parsed as " + format_source(*n) + " prefix " + std::to_string(n->prefix);
    JG_CHECK(n->prefix >= 1 && n->prefix <= family_bits(*n), in, detail);
    JG_CHECK(is_host(*n) == (n->prefix == family_bits(*n)), in, detail);
    JG_CHECK(net_contains(*n, n->addr), in, "a network contains its own address; " + detail);
    const std::string text = format_source(*n);
    auto again = parse_source(text);
    JG_CHECK(again.ok(), in, "format_source's text parses: " + text + (again ? "" : ": " + again.error()));
    JG_CHECK(*again == *n, in, "parse_source(format_source(n)) == n, text '" + text + "'");
    JG_CHECK(format_source(*again) == text, in, "format_source is canonical: " + text);

    const jg_net_key k = make_net_key(*n, 5432, Proto::Tcp);
    JG_CHECK(k.prefixlen == std::uint32_t(32 + (is_v4(*n) ? 96 : 0) + n->prefix), in,
             "the LPM key's prefixlen; " + detail);
    const RemoteKey rk = make_remote_key(*n, 5432, Proto::Tcp);
    JG_CHECK(std::holds_alternative<jg_addr_key>(rk) == is_host(*n), in,
             "a host goes to the hash, a network to the trie; " + detail);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    port(in);
    port_spec(in);
    proto(in);
    addr(in);
    source(in);
    return 0;
}
