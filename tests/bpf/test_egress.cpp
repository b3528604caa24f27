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

#include "core/clock.h"
#include "core/keys.h"
#include "fixture.h"
#include "jitgate.skel.h"
#include "packet.h"

using jgtest::Packet;

namespace {

constexpr std::uint16_t kPort = 25432;
constexpr std::uint16_t kAuditPort = 25433;
constexpr std::uint16_t kOpen = 8080;
constexpr std::uint8_t kTcp = 6, kUdp = 17;
constexpr std::uint16_t kIPv4 = 0x0800, kIPv6 = 0x86DD;

jitgate_bpf* g_skel = nullptr;

int run(const std::vector<std::uint8_t>& frame, std::uint32_t* retval) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = std::uint32_t(frame.size()),
                .repeat = 1);
    int err = bpf_prog_test_run_opts(bpf_program__fd(g_skel->progs.jg_egress), &opts);
    *retval = opts.retval;
    return err;
}

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

void clear_grants() {
    for (auto proto : {jg::Proto::Tcp, jg::Proto::Udp}) {
        auto k = jg::make_uid_key(0, kPort, proto);
        bpf_map_delete_elem(bpf_map__fd(g_skel->maps.jg_grants_uid), &k);
    }
}

std::uint64_t counter(std::uint32_t idx) { return jgtest::counter(g_skel, idx); }

enum class G { None, Tcp, Udp, Expired };

struct Case {
    const char* name;
    std::vector<std::uint8_t> frame;
    G grant;
    std::uint32_t want;  // 1 pass, 0 drop
};

std::vector<Case> cases() {
    return {
        {"ipv4 tcp to an unprotected port",
         Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.1", kTcp).tcp(40000, kOpen).finish(), G::None, 1},
        {"ipv4 tcp to a protected port, no grant",
         Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.1", kTcp).tcp(40000, kPort).finish(), G::None, 0},
        {"ipv4 tcp, grant",
         Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.1", kTcp).tcp(40000, kPort).finish(), G::Tcp, 1},
        {"ipv4 tcp, expired grant",
         Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.1", kTcp).tcp(40000, kPort).finish(), G::Expired, 0},
        {"ipv4 udp, grant for tcp only (wrong proto)",
         Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.1", kUdp).udp(40000, kPort).finish(), G::Tcp, 0},
        {"ipv4 udp, udp grant",
         Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.1", kUdp).udp(40000, kPort).finish(), G::Udp, 1},
        {"ipv4 tcp, grant for another port (wrong port)",
         Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.1", kTcp).tcp(40000, kPort).finish(), G::Udp, 0},
        {"ipv4 with options, no grant",
         Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.1", kTcp, 0, 12).tcp(40000, kPort).finish(), G::None,
         0},
        {"ipv4 with options, grant",
         Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.1", kTcp, 0, 12).tcp(40000, kPort).finish(), G::Tcp,
         1},
        {"ipv4 first fragment, no grant",
         Packet()
             .eth(kIPv4)
             .ipv4("127.0.0.1", "127.0.0.1", kUdp, 0x2000)
             .udp(40000, kPort)
             .payload(64)
             .finish(),
         G::None, 0},
        {"ipv4 non-first fragment (no ports; its first fragment is judged)",
         Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.1", kUdp, 0x0010).payload(64).finish(), G::None, 1},
        {"ipv6 tcp, no grant", Packet().eth(kIPv6).ipv6("::1", "::1", kTcp).tcp(40000, kPort).finish(),
         G::None, 0},
        {"ipv6 tcp, grant", Packet().eth(kIPv6).ipv6("::1", "::1", kTcp).tcp(40000, kPort).finish(), G::Tcp,
         1},
        {"ipv6 tcp to an unprotected port",
         Packet().eth(kIPv6).ipv6("::1", "::1", kTcp).tcp(40000, kOpen).finish(), G::None, 1},
        {"ipv6 hop-by-hop + routing + dest opts, no grant",
         Packet().eth(kIPv6).ipv6("::1", "::1", 0).ext6(43).ext6(60).ext6(kUdp).udp(40000, kPort).finish(),
         G::None, 0},
        {"ipv6 extension headers, grant",
         Packet().eth(kIPv6).ipv6("::1", "::1", 0).ext6(60).ext6(kUdp).udp(40000, kPort).finish(), G::Udp, 1},
        {"ipv6 first fragment, no grant",
         Packet()
             .eth(kIPv6)
             .ipv6("::1", "::1", 44)
             .frag6(kUdp, 0, true)
             .udp(40000, kPort)
             .payload(32)
             .finish(),
         G::None, 0},
        {"ipv6 non-first fragment",
         Packet().eth(kIPv6).ipv6("::1", "::1", 44).frag6(kUdp, 4, false).payload(32).finish(), G::None, 1},
        {"ipv6 v4-mapped addresses, no grant",
         Packet().eth(kIPv6).ipv6("::ffff:127.0.0.1", "::ffff:127.0.0.1", kTcp).tcp(40000, kPort).finish(),
         G::None, 0},
        {"audit-mode port, no grant: passes",
         Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.1", kTcp).tcp(40000, kAuditPort).finish(), G::None,
         1},
        {"non-IP frame (ARP)", Packet().eth(0x0806).payload(28).finish(), G::None, 1},
    };
}

}  // namespace

TEST_CASE("egress verdict table") {
    const std::uint64_t later = jg::boottime_ns() + 3600ULL * 1000000000ULL;
    protect(kPort, JG_PF_PROTECTED, JG_PF_PROTECTED);
    protect(kAuditPort, JG_PF_PROTECTED | JG_PF_AUDIT, 0);
    for (const auto& c : cases()) {
        CAPTURE(c.name);
        clear_grants();
        switch (c.grant) {
            case G::None: break;
            case G::Tcp: grant(kPort, jg::Proto::Tcp, later); break;
            case G::Udp: grant(kPort, jg::Proto::Udp, later); break;
            case G::Expired: grant(kPort, jg::Proto::Tcp, 1); break;
        }
        std::uint32_t rv = 99;
        REQUIRE(run(c.frame, &rv) == 0);
        CHECK_MESSAGE(rv == c.want, c.name);
    }
    clear_grants();
}

TEST_CASE("a drop is counted and reported on the ring buffer") {
    protect(kPort, JG_PF_PROTECTED, JG_PF_PROTECTED);
    clear_grants();
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
    std::uint32_t rv = 99;
    REQUIRE(run(Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.2", kTcp).tcp(40001, kPort).finish(), &rv) ==
            0);
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
    g_skel = jitgate_bpf__open_and_load();
    if (!g_skel) {
        // Root and BTF are there: a program the verifier refuses is this
        // build's failure, not a missing feature of the machine.
        std::printf("FAIL: the kernel refused to load jitgate's BPF programs (verifier log above)\n");
        return 1;
    }
    doctest::Context ctx(argc, argv);
    int rc = ctx.run();
    jitgate_bpf__destroy(g_skel);
    return rc;
}
