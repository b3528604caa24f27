// Port/proto/address parsing and the packing of BPF map keys and values.
#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "core/keys.h"
#include "jitgate/abi.h"

namespace test_keys {
using namespace jg;

namespace {

Addr16 v4mapped(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    return Addr16{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

// Fills a struct with a non-zero pattern first, so a missed memset would show.
template <typename T>
void poison(T& v) {
    std::memset(&v, 0xAB, sizeof(v));
}

void put16(std::uint8_t* p, std::uint16_t v) { std::memcpy(p, &v, 2); }
void put32(std::uint8_t* p, std::uint32_t v) { std::memcpy(p, &v, 4); }
void put64(std::uint8_t* p, std::uint64_t v) { std::memcpy(p, &v, 8); }

// The bytes a jg_net_key must hold: prefixlen, port, proto, zero pad, address.
std::array<std::uint8_t, sizeof(jg_net_key)> net_key_bytes(std::uint32_t prefixlen, std::uint16_t port,
                                                           std::uint8_t proto,
                                                           const std::uint8_t (&addr)[16]) {
    std::array<std::uint8_t, sizeof(jg_net_key)> b;
    poison(b);
    put32(b.data(), prefixlen);
    put16(b.data() + 4, port);
    b[6] = proto;
    b[7] = 0;
    std::memcpy(b.data() + 8, addr, 16);
    return b;
}

}  // namespace

TEST_SUITE("keys") {
    TEST_CASE("parse_port accepts 1..65535 only") {
        CHECK(*parse_port("1") == 1);
        CHECK(*parse_port("22") == 22);
        CHECK(*parse_port("5432") == 5432);
        CHECK(*parse_port("65535") == 65535);
        CHECK(*parse_port("00080") == 80);
        for (const char* bad : {"", "0", "00000", "65536", "70000", "99999", "123456", "-1", "+1", "abc",
                                "12a", " 80", "80 ", "0x50", "1e3", "5432/tcp"}) {
            CAPTURE(bad);
            auto r = parse_port(bad);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error() == std::string("invalid port '") + bad + "': give a number from 1 to 65535");
        }
    }

    TEST_CASE("parse_proto knows tcp and udp, lower case") {
        CHECK(*parse_proto("tcp") == Proto::Tcp);
        CHECK(*parse_proto("udp") == Proto::Udp);
        for (const char* bad : {"", "TCP", "Udp", "both", "icmp", "tcp ", "6"}) {
            CAPTURE(bad);
            auto r = parse_proto(bad);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().find(std::string("'") + bad + "'") != std::string::npos);
        }
        CHECK(proto_name(Proto::Tcp) == "tcp");
        CHECK(proto_name(Proto::Udp) == "udp");
        CHECK(static_cast<int>(Proto::Tcp) == 6);
        CHECK(static_cast<int>(Proto::Udp) == 17);
    }

    TEST_CASE("parse_port_spec: PORT and PORT/PROTO") {
        auto a = parse_port_spec("5432");
        REQUIRE(a.ok());
        CHECK(a->port == 5432);
        CHECK(a->proto == Proto::Tcp);
        CHECK_FALSE(a->proto_given);

        auto b = parse_port_spec("5432/udp");
        REQUIRE(b.ok());
        CHECK(b->port == 5432);
        CHECK(b->proto == Proto::Udp);
        CHECK(b->proto_given);

        auto c = parse_port_spec("53/tcp");
        REQUIRE(c.ok());
        CHECK(c->port == 53);
        CHECK(c->proto == Proto::Tcp);
        CHECK(c->proto_given);

        for (const char* bad : {"", "/tcp", "0/tcp", "70000/udp", "abc", "5432/", "5432/sctp", "5432/tcp/udp",
                                "5432/TCP", "5432 /tcp"}) {
            CAPTURE(bad);
            CHECK_FALSE(parse_port_spec(bad).ok());
        }
        CHECK(parse_port_spec("5432/sctp").error().find("'sctp'") != std::string::npos);
        CHECK(parse_port_spec("0/tcp").error().find("'0'") != std::string::npos);
    }

    TEST_CASE("parse_addr stores IPv4 v4-mapped, in network order") {
        auto a = parse_addr("198.51.100.7");
        REQUIRE(a.ok());
        CHECK(*a == v4mapped(198, 51, 100, 7));
        CHECK(is_v4_mapped(*a));
        CHECK(format_addr(*a) == "198.51.100.7");

        auto z = parse_addr("0.0.0.0");
        REQUIRE(z.ok());
        CHECK(*z == v4mapped(0, 0, 0, 0));
        CHECK(format_addr(*z) == "0.0.0.0");
    }

    TEST_CASE("parse_addr normalises IPv4-mapped IPv6 to the IPv4 form") {
        auto a = parse_addr("::ffff:203.0.113.9");
        REQUIRE(a.ok());
        CHECK(*a == v4mapped(203, 0, 113, 9));
        CHECK(*a == *parse_addr("203.0.113.9"));
        CHECK(format_addr(*a) == "203.0.113.9");

        auto hex = parse_addr("::FFFF:cb00:7109");
        REQUIRE(hex.ok());
        CHECK(*hex == v4mapped(203, 0, 113, 9));
    }

    TEST_CASE("parse_addr keeps IPv6 as is") {
        auto a = parse_addr("2001:db8::1");
        REQUIRE(a.ok());
        const Addr16 want{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        CHECK(*a == want);
        CHECK_FALSE(is_v4_mapped(*a));
        CHECK(format_addr(*a) == "2001:db8::1");

        auto lo = parse_addr("::1");
        REQUIRE(lo.ok());
        CHECK(format_addr(*lo) == "::1");
        CHECK_FALSE(is_v4_mapped(*lo));

        // IPv4-compatible (deprecated) ::a.b.c.d is not v4-mapped.
        auto compat = parse_addr("::198.51.100.1");
        REQUIRE(compat.ok());
        CHECK_FALSE(is_v4_mapped(*compat));
        CHECK(format_addr(*compat) != "198.51.100.1");

        // Canonical text comes back in RFC 5952 form.
        CHECK(format_addr(*parse_addr("2001:0DB8:0000:0000:0000:0000:0000:0010")) == "2001:db8::10");
    }

    TEST_CASE("parse_addr rejects anything but one host address") {
        for (const char* bad :
             {"", "localhost", "198.51.100.256", "198.51.100", "198.51.100.7/24", "2001:db8::1/64",
              "2001:db8::g", "1.2.3.4 ", " 1.2.3.4", "[::1]", "fe80::1%eth0", "1:2:3:4:5:6:7:8:9"}) {
            CAPTURE(bad);
            auto r = parse_addr(bad);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error() ==
                  std::string("invalid address '") + bad + "': give one IPv4 or IPv6 host address");
        }
        // An embedded NUL must not let "1.2.3.4\0junk" through as 1.2.3.4.
        const std::string nul("1.2.3.4\0junk", 12);
        CHECK_FALSE(parse_addr(nul).ok());
        // Longer than any address text.
        CHECK_FALSE(parse_addr(std::string(100, '1')).ok());
    }

    TEST_CASE("ABI sizes") {
        CHECK(sizeof(jg_uid_key) == 8);
        CHECK(sizeof(jg_addr_key) == 20);
        CHECK(sizeof(jg_grant_val) == 16);
        CHECK(sizeof(jg_addr) == 16);
        CHECK(offsetof(jg_uid_key, uid) == 0);
        CHECK(offsetof(jg_uid_key, port) == 4);
        CHECK(offsetof(jg_uid_key, proto) == 6);
        CHECK(offsetof(jg_uid_key, pad) == 7);
        CHECK(offsetof(jg_addr_key, addr) == 0);
        CHECK(offsetof(jg_addr_key, port) == 16);
        CHECK(offsetof(jg_addr_key, proto) == 18);
        CHECK(offsetof(jg_addr_key, pad) == 19);
        CHECK(offsetof(jg_grant_val, expires_ns) == 0);
        CHECK(offsetof(jg_grant_val, grant_id) == 8);
    }

    TEST_CASE("make_uid_key: every byte, padding zeroed, host order") {
        const jg_uid_key k = make_uid_key(1000u, 5432, Proto::Udp);
        CHECK(k.uid == 1000u);
        CHECK(k.port == 5432);
        CHECK(k.proto == JG_PROTO_UDP);
        CHECK(k.pad == 0);

        std::uint8_t want[sizeof(jg_uid_key)];
        poison(want);
        put32(want + 0, 1000u);
        put16(want + 4, 5432);
        want[6] = 17;
        want[7] = 0;
        CHECK(std::memcmp(&k, want, sizeof(want)) == 0);

        const jg_uid_key t = make_uid_key(0xFFFFFFFEu, 65535, Proto::Tcp);
        std::uint8_t want2[sizeof(jg_uid_key)];
        put32(want2 + 0, 0xFFFFFFFEu);
        put16(want2 + 4, 65535);
        want2[6] = 6;
        want2[7] = 0;
        CHECK(std::memcmp(&t, want2, sizeof(want2)) == 0);

        // Equal inputs give byte-identical keys (what a BPF hash lookup needs).
        const jg_uid_key k2 = make_uid_key(1000u, 5432, Proto::Udp);
        CHECK(std::memcmp(&k, &k2, sizeof(k)) == 0);
        const jg_uid_key k3 = make_uid_key(1000u, 5432, Proto::Tcp);
        CHECK(std::memcmp(&k, &k3, sizeof(k)) != 0);
    }

    TEST_CASE("make_bind_key and make_bind_val: every byte, padding zeroed, host order") {
        const jg_bind_key k = make_bind_key(1001u, 5432, Proto::Udp);
        std::uint8_t want[sizeof(jg_bind_key)];
        poison(want);
        put32(want + 0, 1001u);
        put16(want + 4, 5432);
        want[6] = 17;
        want[7] = 0;
        CHECK(std::memcmp(&k, want, sizeof(want)) == 0);
        const jg_bind_key k2 = make_bind_key(1001u, 5432, Proto::Udp);
        CHECK(std::memcmp(&k, &k2, sizeof(k)) == 0);
        const jg_bind_key t = make_bind_key(1001u, 5432, Proto::Tcp);
        CHECK(std::memcmp(&k, &t, sizeof(k)) != 0);
        CHECK(offsetof(jg_bind_key, uid) == 0);
        CHECK(offsetof(jg_bind_key, port) == 4);
        CHECK(offsetof(jg_bind_key, proto) == 6);

        const jg_bind_val v = make_bind_val(1000u, 0u);
        std::uint8_t vwant[sizeof(jg_bind_val)];
        poison(vwant);
        put32(vwant + 0, 1000u);
        put32(vwant + 4, 0u);
        CHECK(std::memcmp(&v, vwant, sizeof(vwant)) == 0);
        CHECK(offsetof(jg_bind_val, tcp_below) == 0);
        CHECK(offsetof(jg_bind_val, udp_below) == 4);
    }

    TEST_CASE("make_addr_key: every byte, padding zeroed") {
        const Addr16 a = *parse_addr("2001:db8::7");
        const jg_addr_key k = make_addr_key(a, 443, Proto::Tcp);
        CHECK(std::memcmp(k.addr, a.data(), 16) == 0);
        CHECK(k.port == 443);
        CHECK(k.proto == JG_PROTO_TCP);
        CHECK(k.pad == 0);

        std::uint8_t want[sizeof(jg_addr_key)];
        poison(want);
        std::memcpy(want, a.data(), 16);
        put16(want + 16, 443);
        want[18] = 6;
        want[19] = 0;
        CHECK(std::memcmp(&k, want, sizeof(want)) == 0);

        // IPv4 and its mapped IPv6 spelling give the same key.
        const jg_addr_key v4 = make_addr_key(*parse_addr("198.51.100.2"), 53, Proto::Udp);
        const jg_addr_key m = make_addr_key(*parse_addr("::ffff:198.51.100.2"), 53, Proto::Udp);
        CHECK(std::memcmp(&v4, &m, sizeof(v4)) == 0);
        const std::uint8_t v4want[20] = {0,    0,    0,   0,  0,   0, 0, 0, 0,  0,
                                         0xff, 0xff, 198, 51, 100, 2, 0, 0, 17, 0};
        std::uint8_t v4w[20];
        std::memcpy(v4w, v4want, 20);
        put16(v4w + 16, 53);
        CHECK(std::memcmp(&v4, v4w, 20) == 0);
    }

    TEST_CASE("make_grant_val: both fields, no stray bytes") {
        const jg_grant_val v = make_grant_val(0x0123456789ABCDEFULL, 42);
        CHECK(v.expires_ns == 0x0123456789ABCDEFULL);
        CHECK(v.grant_id == 42u);
        std::uint8_t want[sizeof(jg_grant_val)];
        poison(want);
        put64(want, 0x0123456789ABCDEFULL);
        put64(want + 8, 42);
        CHECK(std::memcmp(&v, want, sizeof(want)) == 0);
    }

    TEST_CASE("make_local_addr copies the 16 bytes") {
        const Addr16 a = *parse_addr("203.0.113.5");
        const jg_addr l = make_local_addr(a);
        CHECK(std::memcmp(l.addr, a.data(), 16) == 0);
    }

    TEST_CASE("parse_source: single hosts, IPv4, IPv6 and IPv4-mapped") {
        auto a = parse_source("203.0.113.7");
        REQUIRE(a.ok());
        CHECK(a->addr == v4mapped(203, 0, 113, 7));
        CHECK(a->prefix == 32);
        CHECK(is_v4(*a));
        CHECK(is_host(*a));
        CHECK(format_source(*a) == "203.0.113.7");

        // /32 is the same host, and is displayed without the prefix.
        auto a32 = parse_source("203.0.113.7/32");
        REQUIRE(a32.ok());
        CHECK(*a32 == *a);
        CHECK(format_source(*a32) == "203.0.113.7");

        // IPv4-mapped IPv6 comes out as IPv4, prefixes included (counted in 128 bits when written so).
        auto m = parse_source("::ffff:203.0.113.7");
        REQUIRE(m.ok());
        CHECK(*m == *a);
        CHECK(*parse_source("::FFFF:cb00:7107") == *a);
        CHECK(*parse_source("::ffff:203.0.113.7/128") == *a);
        auto mnet = parse_source("::ffff:203.0.113.0/120");
        REQUIRE(mnet.ok());
        CHECK(mnet->prefix == 24);
        CHECK(is_v4(*mnet));
        CHECK(format_source(*mnet) == "203.0.113.0/24");

        auto six = parse_source("2001:db8::7");
        REQUIRE(six.ok());
        const Addr16 want{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
        CHECK(six->addr == want);
        CHECK(six->prefix == 128);
        CHECK_FALSE(is_v4(*six));
        CHECK(is_host(*six));
        CHECK(format_source(*six) == "2001:db8::7");
        CHECK(*parse_source("2001:0DB8:0000::0007/128") == *six);

        // IPv4-compatible ::a.b.c.d is IPv6, not IPv4; link-local names no single host (refused below).
        auto compat = parse_source("::198.51.100.1");
        REQUIRE(compat.ok());
        CHECK_FALSE(is_v4(*compat));
        CHECK(compat->prefix == 128);
        CHECK_FALSE(parse_source("fe80::1").ok());
    }

    TEST_CASE("parse_source: networks") {
        auto n = parse_source("203.0.113.0/24");
        REQUIRE(n.ok());
        CHECK(n->addr == v4mapped(203, 0, 113, 0));
        CHECK(n->prefix == 24);
        CHECK(is_v4(*n));
        CHECK_FALSE(is_host(*n));

        auto half = parse_source("198.51.100.128/25");
        REQUIRE(half.ok());
        CHECK(half->prefix == 25);
        CHECK(half->addr == v4mapped(198, 51, 100, 128));

        CHECK(parse_source("10.0.0.0/8")->prefix == 8);
        CHECK(parse_source("128.0.0.0/3")->prefix == 3);
        CHECK(parse_source("203.0.113.6/31")->prefix == 31);

        auto v6 = parse_source("2001:db8::/64");
        REQUIRE(v6.ok());
        CHECK(v6->prefix == 64);
        CHECK_FALSE(is_v4(*v6));
        CHECK_FALSE(is_host(*v6));
        const Addr16 want{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        CHECK(v6->addr == want);
        CHECK(parse_source("2001:db8::/32")->prefix == 32);
        CHECK(parse_source("2001:db8::6/127")->prefix == 127);
        CHECK(parse_source("2001:db8:0:1::/63").ok() == false);  // ::1:0:0:0:0 has bit 63 set
        CHECK(parse_source("2001:db8:0:2::/63").ok());
    }

    TEST_CASE("parse_source: host bits under the prefix name the network to use") {
        const std::pair<const char*, const char*> cases[] = {
            {"203.0.113.5/24", "203.0.113.5/24 has host bits set; did you mean 203.0.113.0/24?"},
            {"198.51.100.129/25", "198.51.100.129/25 has host bits set; did you mean 198.51.100.128/25?"},
            {"2001:db8::1/64", "2001:db8::1/64 has host bits set; did you mean 2001:db8::/64?"},
            {"2001:db8:0:1::/63", "2001:db8:0:1::/63 has host bits set; did you mean 2001:db8::/63?"},
            {"::ffff:203.0.113.5/120",
             "::ffff:203.0.113.5/120 has host bits set; did you mean 203.0.113.0/24?"},
        };
        for (auto [text, msg] : cases) {
            CAPTURE(text);
            auto r = parse_source(text);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error() == msg);
        }
    }

    TEST_CASE("parse_source refuses unspecified, loopback, multicast and broadcast, one sentence each") {
        const std::pair<const char*, const char*> cases[] = {
            {"0.0.0.0",
             "0.0.0.0 is the unspecified address: no peer sends from it, so give the peer's own "
             "address"},
            {"::", ":: is the unspecified address: no peer sends from it, so give the peer's own address"},
            {"::ffff:0.0.0.0", "0.0.0.0 is the unspecified address"},
            {"0.0.0.0/8", "the network 0.0.0.0/8 begins at 0.0.0.0, which is the unspecified address"},
            {"::/64", "the network ::/64 begins at ::, which is the unspecified address"},
            {"127.0.0.1", "127.0.0.1 is a loopback address: local users get access without --from"},
            {"127.255.255.254", "127.255.255.254 is a loopback address"},
            {"::ffff:127.0.0.1", "127.0.0.1 is a loopback address"},
            {"127.0.0.0/8",
             "the network 127.0.0.0/8 begins at 127.0.0.0, which is a loopback address: local "
             "users get access without --from"},
            {"127.1.0.0/16", "which is a loopback address"},
            {"::1", "::1 is the loopback address: local users get access without --from"},
            {"224.0.0.1",
             "224.0.0.1 is a multicast address: a peer's connections come from a unicast "
             "address, so give that one"},
            {"239.255.255.250", "239.255.255.250 is a multicast address"},
            {"224.0.0.0/4", "the network 224.0.0.0/4 begins at 224.0.0.0, which is a multicast address"},
            {"232.1.0.0/16", "which is a multicast address"},
            {"ff02::1", "ff02::1 is a multicast address"},
            {"ff00::/8", "the network ff00::/8 begins at ff00::, which is a multicast address"},
            {"ff05::/16", "which is a multicast address"},
            {"255.255.255.255", "255.255.255.255 is the broadcast address"},
            {"0.0.0.0/0", "'0.0.0.0/0' would match every IPv4 address: give one host or a narrower network"},
            {"::/0", "'::/0' would match every IPv6 address: give one host or a narrower network"},
            {"::ffff:0:0/96", "'::ffff:0:0/96' would match every IPv4 address"},
            {"169.254.1.2",
             "169.254.1.2 is a link-local address: the same link-local address can be another "
             "host on every link, so give the peer's global address"},
            {"169.254.0.0/16", "begins at 169.254.0.0, which is a link-local address"},
            {"fe80::2", "fe80::2 is a link-local address"},
            {"fe80::/64", "which is a link-local address"},
            {"fe00::/8", "the network fe00::/8 contains a link-local address"},
            {"128.0.0.0/1", "the network 128.0.0.0/1 contains a link-local address"},
            // IPv6 networks around ::ffff:0:0/96 would grant every IPv4 peer.
            {"::fffe:0:0/95", "the network ::fffe:0:0/95 contains the whole IPv4 space (::ffff:0:0/96)"},
            {"::8000:0:0/81", "contains the whole IPv4 space"},
            {"::/80", "the network ::/80 begins at ::, which is the unspecified address"},
        };
        for (auto [text, msg] : cases) {
            CAPTURE(text);
            auto r = parse_source(text);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().find(msg) != std::string::npos);
            CHECK(r.error().find('\n') == std::string::npos);
        }
        // Neighbours of the refused ranges are ordinary peers.
        for (const char* fine : {"126.255.255.255", "128.0.0.1", "223.255.255.255", "240.0.0.1",
                                 "255.255.255.254", "::2", "fe00::1", "fec0::1", "128.0.0.0/3", "fec0::/16",
                                 "::fffe:0:0/96", "::1:0:0:0/96", "64:ff9b::/96"}) {
            CAPTURE(fine);
            CHECK(parse_source(fine).ok());
        }
    }

    TEST_CASE("parse_source rejects malformed text") {
        for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "203.0.113.256", "/24", "/", " 203.0.113.1",
                                "203.0.113.1 ", "\t203.0.113.1", "localhost", "[2001:db8::1]",
                                "2001:db8::1%eth0", "010.0.0.1", "2001:db8::g", "203.0.113.1 /24"}) {
            CAPTURE(bad);
            auto r = parse_source(bad);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error() == std::string("invalid source address '") + bad +
                                   "': give an IPv4 or IPv6 address, or a network as ADDRESS/PREFIX "
                                   "(203.0.113.7, 2001:db8::/64)");
        }
        // Prefixes: digits only, no sign, no space, no leading zero, in the family's range.
        for (const char* bad :
             {"1.2.3.4/33", "203.0.113.0/", "203.0.113.1/024", "203.0.113.0/024", "203.0.113.0/+24",
              "203.0.113.0/-1", "203.0.113.0/ 24", "203.0.113.0/24 ", "203.0.113.0/24/8", "203.0.113.0/1000",
              "203.0.113.0/0x18", "203.0.113.0/00"}) {
            CAPTURE(bad);
            auto r = parse_source(bad);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error() == std::string("invalid prefix length in '") + bad +
                                   "': give a number from 1 to 32 without leading zeros after the '/'");
        }
        for (const char* bad : {"2001:db8::/129", "2001:db8::/", "2001:db8::/064", "2001:db8::/256"}) {
            CAPTURE(bad);
            auto r = parse_source(bad);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error() == std::string("invalid prefix length in '") + bad +
                                   "': give a number from 1 to 128 without leading zeros after the '/'");
        }
        auto shortmapped = parse_source("::ffff:203.0.113.0/64");
        REQUIRE_FALSE(shortmapped.ok());
        CHECK(shortmapped.error() ==
              "'::ffff:203.0.113.0/64' is an IPv4-mapped network shorter than /96: write it in IPv4 form "
              "(203.0.113.0/N, N from 1 to 32)");
        // An embedded NUL must not let "203.0.113.1\0junk" through.
        CHECK_FALSE(parse_source(std::string("203.0.113.1\0junk", 16)).ok());
        CHECK_FALSE(parse_source(std::string("203.0.113.0/24\0", 15)).ok());
        CHECK_FALSE(parse_source(std::string(200, '1')).ok());
    }

    TEST_CASE("format_source is canonical and round-trips") {
        const std::pair<const char*, const char*> cases[] = {
            {"203.0.113.7", "203.0.113.7"},         {"203.0.113.7/32", "203.0.113.7"},
            {"::ffff:203.0.113.7", "203.0.113.7"},  {"::FFFF:203.0.113.0/120", "203.0.113.0/24"},
            {"203.0.113.0/24", "203.0.113.0/24"},   {"2001:0DB8:0000:0000::/48", "2001:db8::/48"},
            {"2001:db8::9/128", "2001:db8::9"},     {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},
            {"2001:db8::6/127", "2001:db8::6/127"}, {"::198.51.100.1", "::198.51.100.1"},
            {"10.0.0.0/8", "10.0.0.0/8"},
        };
        for (auto [text, canonical] : cases) {
            CAPTURE(text);
            auto n = parse_source(text);
            REQUIRE(n.ok());
            const std::string f = format_source(*n);
            CHECK(f == canonical);
            auto again = parse_source(f);
            REQUIRE(again.ok());
            CHECK(*again == *n);
            CHECK(format_source(*again) == f);
        }
    }

    TEST_CASE("is_host and is_v4 count the prefix in the address's own family") {
        CHECK(is_host(SourceNet{v4mapped(203, 0, 113, 7), 32}));
        CHECK_FALSE(is_host(SourceNet{v4mapped(203, 0, 113, 0), 24}));
        CHECK(is_v4(SourceNet{v4mapped(203, 0, 113, 0), 24}));
        const Addr16 six = *parse_addr("2001:db8::7");
        CHECK(is_host(SourceNet{six, 128}));
        CHECK_FALSE(is_host(SourceNet{six, 32}));  // an IPv6 /32, not a host
        CHECK_FALSE(is_v4(SourceNet{six, 128}));
    }

    TEST_CASE("make_net_key: prefixlen, v4 mapping, zeroed padding and host bits") {
        CHECK(sizeof(jg_net_key) == 24);
        CHECK(offsetof(jg_net_key, prefixlen) == 0);
        CHECK(offsetof(jg_net_key, port) == 4);
        CHECK(offsetof(jg_net_key, proto) == 6);
        CHECK(offsetof(jg_net_key, pad) == 7);
        CHECK(offsetof(jg_net_key, addr) == 8);

        // IPv4 /24: 32 (port, proto, pad) + 96 (::ffff:0:0/96) + 24.
        const jg_net_key k = make_net_key(*parse_source("203.0.113.0/24"), 5432, Proto::Tcp);
        CHECK(k.prefixlen == 152u);
        CHECK(k.port == 5432);
        CHECK(k.proto == JG_PROTO_TCP);
        CHECK(k.pad == 0);
        const std::uint8_t a4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 0};
        CHECK(std::memcmp(&k, net_key_bytes(152, 5432, 6, a4).data(), sizeof(k)) == 0);

        // A host is the full length; IPv4 and its mapped spelling give the same key.
        const jg_net_key h = make_net_key(*parse_source("198.51.100.2"), 53, Proto::Udp);
        CHECK(h.prefixlen == 160u);
        const jg_net_key hm = make_net_key(*parse_source("::ffff:198.51.100.2"), 53, Proto::Udp);
        CHECK(std::memcmp(&h, &hm, sizeof(h)) == 0);
        CHECK(h.proto == JG_PROTO_UDP);

        // IPv6 /64: 32 + 64.
        const jg_net_key s = make_net_key(*parse_source("2001:db8:1:2::/64"), 443, Proto::Tcp);
        const std::uint8_t a6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0};
        CHECK(std::memcmp(&s, net_key_bytes(96, 443, 6, a6).data(), sizeof(s)) == 0);
        CHECK(make_net_key(*parse_source("2001:db8::7"), 443, Proto::Tcp).prefixlen == 160u);

        // Bits past the prefix are zeroed even when a SourceNet was built by hand with them set.
        const jg_net_key z = make_net_key(SourceNet{v4mapped(203, 0, 113, 77), 24}, 1, Proto::Tcp);
        CHECK(std::memcmp(z.addr, a4, 16) == 0);
        const jg_net_key z6 = make_net_key(SourceNet{*parse_addr("2001:db8::ffff:ffff"), 100}, 1, Proto::Tcp);
        CHECK(z6.prefixlen == 132u);
        const std::uint8_t a6z[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0, 0, 0};
        CHECK(std::memcmp(z6.addr, a6z, 16) == 0);
        const jg_net_key odd = make_net_key(SourceNet{v4mapped(198, 51, 100, 255), 27}, 1, Proto::Tcp);
        CHECK(odd.prefixlen == 32u + 96u + 27u);
        CHECK(odd.addr[15] == 0xe0);
    }

    TEST_CASE("make_remote_key: a host goes to the address hash, a network to the prefix trie") {
        auto host = parse_source("203.0.113.7");
        auto net = parse_source("2001:db8:1::/48");
        REQUIRE(host.ok());
        REQUIRE(net.ok());
        const RemoteKey hk = make_remote_key(*host, 5432, Proto::Tcp);
        const RemoteKey nk = make_remote_key(*net, 53, Proto::Udp);
        REQUIRE(std::holds_alternative<jg_addr_key>(hk));
        REQUIRE(std::holds_alternative<jg_net_key>(nk));
        const jg_addr_key want_h = make_addr_key(host->addr, 5432, Proto::Tcp);
        const jg_net_key want_n = make_net_key(*net, 53, Proto::Udp);
        CHECK(std::memcmp(&std::get<jg_addr_key>(hk), &want_h, sizeof(want_h)) == 0);
        CHECK(std::memcmp(&std::get<jg_net_key>(nk), &want_n, sizeof(want_n)) == 0);
    }

    TEST_CASE("make_rl_uid_key / make_rl_addr_key: the programs' packing, padding zeroed") {
        const jg_rl_key u = make_rl_uid_key(1000u, 5432, Proto::Udp);
        std::uint8_t want[sizeof(jg_rl_key)];
        std::memset(want, 0, sizeof(want));
        put32(want, 1000u);
        put16(want + 16, 5432);
        want[18] = JG_PROTO_UDP;
        want[19] = JG_RL_UID;
        CHECK(std::memcmp(&u, want, sizeof(want)) == 0);

        // IPv4: the whole v4-mapped address.
        const jg_rl_key v4 = make_rl_addr_key(*parse_addr("203.0.113.7"), 53, Proto::Tcp);
        const std::uint8_t v4want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 7};
        CHECK(std::memcmp(v4.addr, v4want, 16) == 0);
        CHECK(v4.port == 53);
        CHECK(v4.proto == JG_PROTO_TCP);
        CHECK(v4.kind == JG_RL_ADDR);

        // IPv6: per /64, the interface identifier zeroed, so two addresses of
        // one /64 share a window and another /64 does not.
        const jg_rl_key a = make_rl_addr_key(*parse_addr("2001:db8:1:2::7"), 53, Proto::Tcp);
        const jg_rl_key b = make_rl_addr_key(*parse_addr("2001:db8:1:2:ffff::9"), 53, Proto::Tcp);
        const jg_rl_key c = make_rl_addr_key(*parse_addr("2001:db8:1:3::7"), 53, Proto::Tcp);
        CHECK(std::memcmp(&a, &b, sizeof(a)) == 0);
        CHECK(std::memcmp(&a, &c, sizeof(a)) != 0);
        const Addr16 net = *parse_addr("2001:db8:1:2::");
        CHECK(std::memcmp(a.addr, net.data(), 16) == 0);
    }

    TEST_CASE("make_allow_key: the principal, zero padding, the grant") {
        CHECK(sizeof(jg_allow_key) == 32);
        CHECK(offsetof(jg_allow_key, who) == 0);
        CHECK(offsetof(jg_allow_key, pad) == 20);
        CHECK(offsetof(jg_allow_key, grant_id) == 24);
        const jg_rl_key who = make_rl_uid_key(1001u, 5432, Proto::Tcp);
        const jg_allow_key k = make_allow_key(who, 0x0102030405060708ULL);
        std::uint8_t want[sizeof(jg_allow_key)];
        poison(want);
        std::memcpy(want, &who, sizeof(who));
        std::memset(want + 20, 0, 4);
        put64(want + 24, 0x0102030405060708ULL);
        CHECK(std::memcmp(&k, want, sizeof(want)) == 0);
        const jg_allow_key other = make_allow_key(who, 9);
        CHECK(std::memcmp(&k, &other, sizeof(k)) != 0);
    }

    TEST_CASE("rl_principal names the uid, an IPv4 source, an IPv6 /64") {
        const RlPrincipal u = rl_principal(make_rl_uid_key(1001u, 5432, Proto::Tcp));
        CHECK(u.is_uid);
        CHECK(u.uid == 1001u);
        const RlPrincipal v4 = rl_principal(make_rl_addr_key(*parse_addr("203.0.113.7"), 53, Proto::Udp));
        CHECK(!v4.is_uid);
        CHECK(v4.src == "203.0.113.7");
        const RlPrincipal v6 = rl_principal(make_rl_addr_key(*parse_addr("2001:db8:1:2::7"), 53, Proto::Udp));
        CHECK(v6.src == "2001:db8:1:2::/64");
    }

    TEST_CASE("make_local_net_key: prefixlen in the 128-bit space, host bits zeroed") {
        CHECK(sizeof(jg_local_net_key) == 20);
        CHECK(offsetof(jg_local_net_key, addr) == 4);
        SourceNet v4{*parse_addr("198.51.100.130"), 25};  // a route's dst: host bits may be set
        const jg_local_net_key k = make_local_net_key(v4);
        std::uint8_t want[sizeof(jg_local_net_key)];
        poison(want);
        put32(want, 96 + 25);
        const std::uint8_t a[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 128};
        std::memcpy(want + 4, a, 16);
        CHECK(std::memcmp(&k, want, sizeof(want)) == 0);
        const jg_local_net_key k6 = make_local_net_key(SourceNet{*parse_addr("2001:db8:5::1"), 48});
        CHECK(k6.prefixlen == 48u);
        CHECK(std::memcmp(k6.addr, parse_addr("2001:db8:5::")->data(), 16) == 0);
        const jg_local_net_key all = make_local_net_key(SourceNet{*parse_addr("0.0.0.0"), 0});
        CHECK(all.prefixlen == 96u);  // "local 0.0.0.0/0": every IPv4 address
    }

}  // TEST_SUITE

}  // namespace test_keys
