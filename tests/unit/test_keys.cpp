// Port/proto/address parsing and the packing of BPF map keys and values.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/keys.h"
#include "jitgate/abi.h"

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

}  // TEST_SUITE
