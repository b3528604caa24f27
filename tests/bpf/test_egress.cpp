// BPF_PROG_TEST_RUN tables for cgroup_skb/egress (jg_egress): the skeleton is
// loaded, never attached; maps are private to this process.
#define DOCTEST_CONFIG_IMPLEMENT
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/keys.h"
#include "fixture.h"
#include "jitgate.skel.h"
#include "packet.h"

using jgtest::Packet;
using Frame = std::vector<std::uint8_t>;
using namespace jgtest::wire;

namespace {

constexpr std::uint16_t kPort = 25432;
constexpr std::uint16_t kAuditPort = 25433;
constexpr std::uint16_t kOtherPort = 25435;  // protected too: a grant for "another port"
constexpr std::uint16_t kOpen = 8080;
constexpr std::uint16_t kSport = 40000;

jitgate_bpf* g_skel = nullptr;

long run(const Frame& frame) { return jgtest::test_run(bpf_program__fd(g_skel->progs.jg_egress), frame); }

void protect(std::uint16_t port, std::uint8_t tcp, std::uint8_t udp) {
    REQUIRE(jgtest::protect(g_skel, port, tcp, udp));
}

// The test run's socket belongs to uid 0 and has no per-socket state, so the
// egress program judges by the socket owner: grants are made for uid 0.
void grant(std::uint16_t port, jg::Proto proto, std::uint64_t expires_ns) {
    auto k = jg::make_uid_key(0, port, proto);
    auto v = jg::make_grant_val(expires_ns, 42);
    REQUIRE(bpf_map_update_elem(bpf_map__fd(g_skel->maps.jg_grants_uid), &k, &v, BPF_ANY) == 0);
}

std::uint64_t counter(std::uint32_t idx) { return jgtest::counter(g_skel, idx); }

// Loopback frames of a local socket.
Packet ip4(std::uint8_t proto, std::uint16_t frag_field = 0, std::size_t options = 0) {
    return std::move(Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.1", proto, frag_field, options));
}
Packet ip6(std::uint8_t next, const char* addr = "::1") {
    return std::move(Packet().eth(kIPv6).ipv6(addr, addr, next));
}

enum class G { None, Tcp, Udp, Expired, OtherPort };

struct Case {
    const char* name;
    Frame frame;
    G grant;
    long want;  // 1 pass, 0 drop
};

std::vector<Case> cases() {
    return {
        {"ipv4 tcp to an unprotected port", ip4(kTcp).tcp(kSport, kOpen).finish(), G::None, 1},
        {"ipv4 tcp to a protected port, no grant", ip4(kTcp).tcp(kSport, kPort).finish(), G::None, 0},
        {"ipv4 tcp, grant", ip4(kTcp).tcp(kSport, kPort).finish(), G::Tcp, 1},
        {"ipv4 tcp RST, no grant: a reset opens nothing", ip4(kTcp).tcp(kSport, kPort, kRst).finish(),
         G::None, 1},
        {"ipv4 tcp RST+ACK, no grant", ip4(kTcp).tcp(kSport, kPort, kRst | kAck).finish(), G::None, 1},
        {"ipv4 tcp RST+SYN, no grant", ip4(kTcp).tcp(kSport, kPort, kRst | kSyn).finish(), G::None, 0},
        {"ipv4 tcp ACK, no grant", ip4(kTcp).tcp(kSport, kPort, kAck).finish(), G::None, 0},
        {"ipv4 with options, tcp RST, no grant", ip4(kTcp, 0, 12).tcp(kSport, kPort, kRst).finish(), G::None,
         1},
        {"ipv6 tcp RST, no grant", ip6(kTcp).tcp(kSport, kPort, kRst).finish(), G::None, 1},
        {"ipv6 ext headers, tcp FIN, no grant", ip6(kHop).ext6(kTcp).tcp(kSport, kPort, kFin | kAck).finish(),
         G::None, 0},
        {"ipv4 tcp, expired grant", ip4(kTcp).tcp(kSport, kPort).finish(), G::Expired, 0},
        {"ipv4 udp, grant for tcp only (wrong proto)", ip4(kUdp).udp(kSport, kPort).finish(), G::Tcp, 0},
        {"ipv4 tcp, grant for udp only (wrong proto)", ip4(kTcp).tcp(kSport, kPort).finish(), G::Udp, 0},
        {"ipv4 udp, udp grant", ip4(kUdp).udp(kSport, kPort).finish(), G::Udp, 1},
        {"ipv4 tcp, grant for another port (wrong port)", ip4(kTcp).tcp(kSport, kPort).finish(), G::OtherPort,
         0},
        {"ipv4 with options, no grant", ip4(kTcp, 0, 12).tcp(kSport, kPort).finish(), G::None, 0},
        {"ipv4 with options, grant", ip4(kTcp, 0, 12).tcp(kSport, kPort).finish(), G::Tcp, 1},
        {"ipv4 first fragment, no grant", ip4(kUdp, kMF).udp(kSport, kPort).payload(64).finish(), G::None, 0},
        {"ipv4 non-first fragment (no ports; its first fragment is judged)",
         ip4(kUdp, 0x0010).payload(64).finish(), G::None, 1},
        {"ipv6 tcp, no grant", ip6(kTcp).tcp(kSport, kPort).finish(), G::None, 0},
        {"ipv6 tcp, grant", ip6(kTcp).tcp(kSport, kPort).finish(), G::Tcp, 1},
        {"ipv6 tcp to an unprotected port", ip6(kTcp).tcp(kSport, kOpen).finish(), G::None, 1},
        {"ipv6 hop-by-hop + routing + dest opts, no grant",
         ip6(kHop).ext6(kRouting).ext6(kDest).ext6(kUdp).udp(kSport, kPort).finish(), G::None, 0},
        {"ipv6 extension headers, grant", ip6(kHop).ext6(kDest).ext6(kUdp).udp(kSport, kPort).finish(),
         G::Udp, 1},
        {"ipv6 first fragment, no grant",
         ip6(kFrag).frag6(kUdp, 0, true).udp(kSport, kPort).payload(32).finish(), G::None, 0},
        {"ipv6 non-first fragment", ip6(kFrag).frag6(kUdp, 4, false).payload(32).finish(), G::None, 1},
        {"ipv6 v4-mapped addresses, no grant", ip6(kTcp, "::ffff:127.0.0.1").tcp(kSport, kPort).finish(),
         G::None, 0},
        {"audit-mode port, no grant: passes", ip4(kTcp).tcp(kSport, kAuditPort).finish(), G::None, 1},
        {"non-IP frame (ARP)", Packet().eth(kArp).payload(28).finish(), G::None, 1},
    };
}

}  // namespace

TEST_CASE("egress verdict table") {
    const std::uint64_t later = jgtest::hour_from_now();
    protect(kPort, JG_PF_PROTECTED, JG_PF_PROTECTED);
    protect(kOtherPort, JG_PF_PROTECTED, JG_PF_PROTECTED);
    protect(kAuditPort, JG_PF_PROTECTED | JG_PF_AUDIT, 0);
    for (const auto& c : cases()) {
        CAPTURE(c.name);
        jgtest::clear_map(g_skel->maps.jg_grants_uid);
        switch (c.grant) {
            case G::None: break;
            case G::Tcp: grant(kPort, jg::Proto::Tcp, later); break;
            case G::Udp: grant(kPort, jg::Proto::Udp, later); break;
            case G::Expired: grant(kPort, jg::Proto::Tcp, 1); break;
            case G::OtherPort: grant(kOtherPort, jg::Proto::Tcp, later); break;
        }
        const long rv = run(c.frame);
        REQUIRE(rv >= 0);  // the kernel ran it
        CHECK_MESSAGE(rv == c.want, c.name);
    }
    jgtest::clear_map(g_skel->maps.jg_grants_uid);
}

TEST_CASE("a drop is counted and reported on the ring buffer") {
    protect(kPort, JG_PF_PROTECTED, JG_PF_PROTECTED);
    jgtest::clear_map(g_skel->maps.jg_grants_uid);
    int events = 0;
    jg_event last{};
    auto cb = [](void* ctx, void* data, size_t) -> int {
        auto* p = static_cast<std::pair<int*, jg_event*>*>(ctx);
        ++*p->first;
        std::memcpy(p->second, data, sizeof(jg_event));
        return 0;
    };
    std::pair<int*, jg_event*> ctx{&events, &last};
    ring_buffer* rb = ring_buffer__new(bpf_map__fd(g_skel->maps.jg_events), cb, &ctx, nullptr);
    REQUIRE(rb != nullptr);
    ring_buffer__consume(rb);
    events = 0;
    const std::uint64_t drops = counter(JG_CNT_EGRESS_DROP);
    const long rv = run(Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.2", kTcp).tcp(40001, kPort).finish());
    REQUIRE(rv >= 0);  // the kernel ran it
    CHECK(rv == 0);
    CHECK(counter(JG_CNT_EGRESS_DROP) == drops + 1);
    ring_buffer__consume(rb);
    CHECK(events == 1);
    CHECK(last.verdict == JG_VERDICT_DENY);
    CHECK(last.hook == JG_HOOK_EGRESS);
    CHECK(last.dport == kPort);
    CHECK(last.sport == 40001);
    CHECK(last.proto == JG_PROTO_TCP);
    jg::Addr16 dst;
    std::memcpy(dst.data(), last.dst, 16);
    CHECK(jg::format_addr(dst) == "127.0.0.2");
    ring_buffer__free(rb);
}

int main(int argc, char** argv) {
    if (geteuid() != 0) return jgtest::skip("needs root to load BPF programs");
    g_skel = jgtest::load_skeleton();
    if (!g_skel) return 1;
    doctest::Context ctx(argc, argv);
    int rc = ctx.run();
    jitgate_bpf__destroy(g_skel);
    return rc;
}

// The daemon refuses a grant when the map is full (the workflow's capacity
// error, unit-tested with a fake sink); this is the kernel side it relies on:
// the grant maps are not LRU, so a full map refuses the new grant (E2BIG)
// and never evicts one that is in force.
TEST_CASE("a full grant map refuses a new grant and keeps every existing one") {
    protect(kPort, JG_PF_PROTECTED, JG_PF_PROTECTED);
    jgtest::clear_map(g_skel->maps.jg_grants_uid);
    const int fd = bpf_map__fd(g_skel->maps.jg_grants_uid);
    grant(kPort, jg::Proto::Tcp, jgtest::hour_from_now());  // uid 0's, the test run's socket
    const auto far = jg::make_grant_val(jgtest::hour_from_now(), 7);
    std::uint32_t added = 1, failed = 0;
    for (std::uint32_t uid = 1000; added < JG_GRANT_ENTRIES; ++uid, ++added) {
        const auto k = jg::make_uid_key(uid, kPort, jg::Proto::Tcp);
        if (bpf_map_update_elem(fd, &k, &far, BPF_NOEXIST) != 0) ++failed;
    }
    REQUIRE(failed == 0);
    const auto extra = jg::make_uid_key(999, kPort, jg::Proto::Tcp);
    CHECK(bpf_map_update_elem(fd, &extra, &far, BPF_ANY) == -E2BIG);  // libbpf: -errno
    // Every grant is still there, and uid 0's still opens the port.
    std::uint32_t count = 0;
    jg_uid_key k{}, next{};
    for (void* prev = nullptr; bpf_map_get_next_key(fd, prev, &next) == 0; prev = &k) {
        k = next;
        ++count;
    }
    CHECK(count == JG_GRANT_ENTRIES);
    CHECK(run(Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.2", kTcp).tcp(40001, kPort).finish()) == 1);
    jgtest::clear_map(g_skel->maps.jg_grants_uid);
}
