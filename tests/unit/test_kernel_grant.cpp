// A stored grant row as the kernel holds it (parsed once, at the store
// boundary), its map key, and the rate-limit windows the daemon closes.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <variant>
#include <vector>

#include "core/kernel_grant.h"
#include "core/rl_window.h"
#include "jitgate/abi.h"

namespace test_kernel_grant {
using namespace jg;

namespace {

GrantRow row(const char* src) {
    GrantRow g;
    g.id = 42;
    g.uid = 1000;
    g.user = "rita";
    g.port = 5432;
    g.proto = Proto::Udp;
    g.expires_boot_ns = 7000000000ULL;
    g.src = src;
    return g;
}

template <typename K>
bool same(const K& a, const K& b) {
    return std::memcmp(&a, &b, sizeof(K)) == 0;
}

}  // namespace

TEST_SUITE("kernel grant") {
    TEST_CASE("a local grant: the uid map, keyed by uid, port and protocol") {
        auto k = kernel_grant(row(""));
        REQUIRE(k);
        CHECK(k->id == 42);
        CHECK(k->uid == 1000u);
        CHECK(!k->src);
        CHECK(k->port == 5432);
        CHECK(k->proto == Proto::Udp);
        CHECK(k->expires_boot_ns == 7000000000ULL);
        const GrantKey key = grant_key(*k);
        REQUIRE(std::holds_alternative<jg_uid_key>(key));
        CHECK(same(std::get<jg_uid_key>(key), make_uid_key(1000, 5432, Proto::Udp)));
        CHECK(principal_of(std::get<jg_uid_key>(key)) == "uid 1000");
    }

    TEST_CASE("a remote host: the address hash; a network: the prefix trie") {
        auto host = kernel_grant(row("203.0.113.7"));
        REQUIRE(host);
        REQUIRE(host->src);
        CHECK(format_source(*host->src) == "203.0.113.7");
        const GrantKey hk = grant_key(*host);
        REQUIRE(std::holds_alternative<jg_addr_key>(hk));
        CHECK(same(std::get<jg_addr_key>(hk), make_addr_key(*parse_addr("203.0.113.7"), 5432, Proto::Udp)));
        CHECK(principal_of(std::get<jg_addr_key>(hk)) == "203.0.113.7");

        auto net = kernel_grant(row("2001:db8:0:0:8000::/65"));
        REQUIRE(net);
        REQUIRE(net->src);
        CHECK(net->src->prefix == 65);
        const GrantKey nk = grant_key(*net);
        REQUIRE(std::holds_alternative<jg_net_key>(nk));
        CHECK(same(std::get<jg_net_key>(nk), make_net_key(*net->src, 5432, Proto::Udp)));
        CHECK(std::get<jg_net_key>(nk).prefixlen == 32u + 65u);
        CHECK(principal_of(std::get<jg_net_key>(nk)) == "2001:db8:0:0:8000:: prefix 97");
    }

    TEST_CASE("reconcile's test: an entry is an active grant's only under its id and its very key") {
        std::vector<KernelGrant> active = {*kernel_grant(row("")), *kernel_grant(row("203.0.113.0/24"))};
        active[1].id = 43;
        const ActiveGrantKeys known(active);
        CHECK(known.holds(grant_key(active[0]), 42));
        CHECK(known.holds(grant_key(active[1]), 43));
        CHECK(!known.holds(grant_key(active[0]), 44));  // an id the store does not have active
        CHECK(!known.holds(grant_key(active[0]), 43));  // grant 43's id on grant 42's key (another map)
        CHECK(!known.holds(make_uid_key(1001, 5432, Proto::Udp), 42));  // another uid
        CHECK(!known.holds(make_uid_key(1000, 5432, Proto::Tcp), 42));  // another protocol
        CHECK(!known.holds(make_net_key(*parse_source("203.0.113.0/25"), 5432, Proto::Udp),
                           43));  // another prefix
        CHECK(!ActiveGrantKeys({}).holds(grant_key(active[0]), 42));
    }

    TEST_CASE("a source the store should never hold is an error naming the grant") {
        auto bad = kernel_grant(row("203.0.113.7/8"));
        REQUIRE(!bad);
        CHECK(bad.error().find("grant 42 names source 203.0.113.7/8") == 0);
        CHECK(!kernel_grant(row("not an address")));
    }
}

TEST_SUITE("rate-limit windows") {
    jg_rl_val val(std::uint64_t end, std::uint32_t suppressed, std::uint8_t verdict, std::uint8_t hook) {
        jg_rl_val v;
        std::memset(&v, 0, sizeof(v));
        v.window_end_ns = end;
        v.suppressed = suppressed;
        v.verdict = verdict;
        v.hook = hook;
        return v;
    }

    TEST_CASE("a window is idle a whole window after its end, not before") {
        const jg_rl_val v = val(5 * JG_RL_WINDOW_NS, 3, 0, JG_HOOK_INGRESS);
        CHECK(!window_idle(v, 5 * JG_RL_WINDOW_NS));
        CHECK(!window_idle(v, 6 * JG_RL_WINDOW_NS - 1));
        CHECK(window_idle(v, 6 * JG_RL_WINDOW_NS));
    }

    TEST_CASE("a deny window of a remote source: its /64, port, protocol, hook and count") {
        const jg_rl_key k = make_rl_addr_key(*parse_addr("2001:db8:1:2::7"), 53, Proto::Udp);
        const ClosedWindow w = deny_window(k, val(1, 4, JG_VERDICT_WOULD_DENY, JG_HOOK_XDP));
        CHECK(!w.bind);
        CHECK(!w.who.is_uid);
        CHECK(w.who.src == "2001:db8:1:2::/64");
        CHECK(w.port == 53);
        CHECK(w.proto == Proto::Udp);
        CHECK(w.hook == JG_HOOK_XDP);
        CHECK(w.verdict == JG_VERDICT_WOULD_DENY);
        CHECK(w.suppressed == 4u);
        CHECK(w.grant_id == 0u);
    }

    TEST_CASE("a refused bind's window names the uid and says bind") {
        jg_rl_key k = make_rl_uid_key(1001u, 8080, Proto::Tcp);
        k.kind = JG_RL_BIND;
        const ClosedWindow w = deny_window(k, val(1, 2, JG_VERDICT_DENY, JG_HOOK_BIND4));
        CHECK(w.bind);
        CHECK(w.who.is_uid);
        CHECK(w.who.uid == 1001u);
        CHECK(w.port == 8080);
        CHECK(w.hook == JG_HOOK_BIND4);
    }

    TEST_CASE("an allow window carries its grant") {
        const jg_allow_key k = make_allow_key(make_rl_uid_key(1000u, 5432, Proto::Tcp), 77);
        const ClosedWindow w = allow_window(k, val(1, 9, JG_VERDICT_ALLOW, JG_HOOK_CONNECT4));
        CHECK(w.who.is_uid);
        CHECK(w.who.uid == 1000u);
        CHECK(w.port == 5432);
        CHECK(w.proto == Proto::Tcp);
        CHECK(w.grant_id == 77u);
        CHECK(w.suppressed == 9u);
        CHECK(w.hook == JG_HOOK_CONNECT4);
    }
}

}  // namespace test_kernel_grant
