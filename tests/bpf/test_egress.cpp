// BPF_PROG_TEST_RUN tables for cgroup_skb/egress (jg_egress): the skeleton is
// loaded, its maps private to this process; the "attached:" cases attach it
// to a child cgroup of their own (attached.h).
#define DOCTEST_CONFIG_IMPLEMENT
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "attached.h"
#include "core/clock.h"
#include "core/keys.h"
#include "fixture.h"
#include "jitgate.skel.h"
#include "packet.h"
#include "suite_main.h"

using jgtest::loopback;
using jgtest::Packet;
using Frame = std::vector<std::uint8_t>;
using namespace jgtest::wire;

namespace {

constexpr std::uint16_t kPort = 25432;
constexpr std::uint16_t kAuditPort = 25433;
constexpr std::uint16_t kOtherPort = 25435;  // protected too: a grant for "another port"
constexpr std::uint16_t kLivePort = 25437;   // the attached rows' port, protected per row
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

TEST_CASE("egress leaves sockets of other network namespaces alone (containers' own loopback)") {
    protect(kPort, JG_PF_PROTECTED, JG_PF_PROTECTED);
    jgtest::clear_map(g_skel->maps.jg_grants_uid);
    const std::uint64_t own = jgtest::own_netns_cookie();
    REQUIRE(own != 0);
    const Frame tcp = ip4(kTcp).tcp(kSport, kPort).finish();
    const Frame udp = ip4(kUdp).udp(kSport, kPort).finish();
    const Frame tcp6 = ip6(kTcp).tcp(kSport, kPort).finish();
    struct Row {
        const char* what;
        std::uint64_t host_cookie;  // jg_config.host_netns_cookie
        long want;
    };
    const Row rows[] = {
        {"the test's netns is the host's: judged, no grant -> drop", own, 0},
        {"the host is another netns: this socket's is a container's -> pass", own + 1, 1},
        {"no host netns configured: every netns is the host's (fail closed) -> drop", 0, 0},
    };
    for (const auto& r : rows) {
        const std::string what = r.what;
        CAPTURE(what);
        REQUIRE(jgtest::set_config(g_skel, r.host_cookie));
        for (const Frame* f : {&tcp, &udp, &tcp6}) CHECK(run(*f) == r.want);
    }
    REQUIRE(jgtest::set_config(g_skel, 0));
}

// ---- jg_egress attached for real
//
// The drain exception depends on per-socket state (jg_sk_state) that only a
// real socket carries: a test run's stand-in socket is new on every run.  So
// these rows run real sockets, in a child process with a network namespace
// of its own, inside a child cgroup made for the test (never the root
// cgroup) to which jg_egress alone is attached.  Each socket gets the state
// the sock_addr hooks leave on a socket a grant admitted (uid 4242, grant
// 42), the grant has ended, and the row's port flags are then set.

constexpr std::uint32_t kLiveUid = 4242;

// The state the sock_addr hooks leave on a socket of uid kLiveUid that a
// grant (id 42) admitted to kLivePort, its cache empty.
jg_sk_state hook_state(std::uint8_t proto = JG_PROTO_UDP) {
    jg_sk_state st{};
    st.uid = kLiveUid;
    st.port = kLivePort;
    st.proto = proto;
    st.grant_id = 42;
    return st;
}

bool set_state(int fd, const jg_sk_state& st) {
    return bpf_map_update_elem(bpf_map__fd(g_skel->maps.jg_sk_state), &fd, &st, BPF_ANY) == 0;
}

// The socket's state as the programs left it; nullopt when it has none.
std::optional<jg_sk_state> get_state(int fd) {
    jg_sk_state st{};
    if (bpf_map_lookup_elem(bpf_map__fd(g_skel->maps.jg_sk_state), &fd, &st) != 0) return std::nullopt;
    return st;
}

struct LiveRow {
    const char* what;
    int type;  // SOCK_STREAM or SOCK_DGRAM
    std::uint8_t flags;
    bool delivered;
};

const LiveRow kLiveRows[] = {
    {"drain port, connected UDP socket after its grant ended: cut", SOCK_DGRAM, JG_PF_PROTECTED | JG_PF_DRAIN,
     false},
    {"drain port, established TCP connection after its grant ended: drains", SOCK_STREAM,
     JG_PF_PROTECTED | JG_PF_DRAIN, true},
    {"cut port, established TCP connection after its grant ended: cut", SOCK_STREAM, JG_PF_PROTECTED, false},
    {"cut port, connected UDP socket after its grant ended: cut", SOCK_DGRAM, JG_PF_PROTECTED, false},
};

// In the child: one row.  'y' when the client's second message reached the
// server, 'n' when it did not, 'e' when the setup failed.
char live_row(const LiveRow& r) {
    const sockaddr_in at = loopback(kLivePort);
    const auto* sa = reinterpret_cast<const sockaddr*>(&at);
    const timeval wait{1, 0};  // a dropped segment is retransmitted: give it time to show
    const int srv = socket(AF_INET, r.type, 0), cli = socket(AF_INET, r.type, 0);
    int one = 1, peer = -1;
    char buf[8];
    char result = 'e';
    if (srv < 0 || cli < 0 || setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(srv, sa, sizeof(at)) != 0 || (r.type == SOCK_STREAM && listen(srv, 1) != 0) ||
        connect(cli, sa, sizeof(at)) != 0)
        goto out;
    peer = r.type == SOCK_STREAM ? accept(srv, nullptr, nullptr) : dup(srv);
    if (peer < 0 || setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait)) != 0) goto out;
    // Under the grant (the port not protected yet): the path works.
    if (send(cli, "a", 1, 0) != 1 || recv(peer, buf, sizeof(buf), 0) != 1) goto out;
    {
        const jg_sk_state st = hook_state(r.type == SOCK_STREAM ? JG_PROTO_TCP : JG_PROTO_UDP);
        if (!set_state(cli, st)) goto out;
        const auto key = jg::make_uid_key(kLiveUid, kLivePort, jg::Proto(st.proto));
        const auto ended = jg::make_grant_val(1, 42);
        if (bpf_map_update_elem(bpf_map__fd(g_skel->maps.jg_grants_uid), &key, &ended, BPF_ANY) != 0)
            goto out;
        if (!jgtest::protect(g_skel, kLivePort, r.type == SOCK_STREAM ? r.flags : 0,
                             r.type == SOCK_DGRAM ? r.flags : 0))
            goto out;
    }
    send(cli, "b", 1, 0);  // UDP: EPERM when egress drops it; TCP: queued either way
    result = recv(peer, buf, sizeof(buf), 0) == 1 ? 'y' : 'n';
out:
    jgtest::protect(g_skel, kLivePort, 0, 0);
    for (int fd : {peer, cli, srv})
        if (fd >= 0) close(fd);
    return result;
}

TEST_CASE("attached: on_expiry = drain lets TCP connections finish and cuts UDP") {
    const std::uint64_t drops = counter(JG_CNT_EGRESS_DROP);
    const auto run = jgtest::run_attached("drain", {g_skel->progs.jg_egress}, [](auto emit) {
        for (const auto& r : kLiveRows) emit(live_row(r));
    });
    jgtest::clear_map(g_skel->maps.jg_grants_uid);
    REQUIRE_MESSAGE(run.why.empty(), run.why);
    CHECK_MESSAGE(run.clean(), "child status " << run.status);
    CHECK(counter(JG_CNT_EGRESS_DROP) > drops);
    const std::string& got = run.got;
    REQUIRE(got.size() == std::size(kLiveRows));
    for (std::size_t i = 0; i < got.size(); ++i) {
        const std::string what = kLiveRows[i].what;
        CAPTURE(what);
        CHECK(got[i] != 'e');
        CHECK(got[i] == (kLiveRows[i].delivered ? 'y' : 'n'));
    }
}

// ---- the egress cache (jg_sk_state.cached_*, cache_seq), attached
//
// A connected UDP socket of uid kLiveUid (its jg_sk_state written as the
// sock_addr hooks leave it) sends on a protected port; the steps below are
// the child's, each one result byte ('y' delivered or as expected, 'n' not,
// 'e' setup failed), in this order.
const char* const kCacheSteps[] = {
    "under a grant: delivered",
    "the socket's cache holds the grant's end and the generation it was read under",
    "grant gone from jg_grants_uid, grant_gen unchanged: delivered from the cache",
    "grant_gen raised: the cache no longer holds, refused",
    "no grant; a cache naming another port, this generation: not used for this one, refused",
    "no grant; a cache naming another uid than the socket's: not used, refused",
    "no grant; a cache naming another protocol: not used, refused",
    "no grant; this port's whole tuple but cache_seq odd (a writer mid-write): not used, refused",
    "a grant, cache_seq odd: delivered, the cache left as it was",
    "cache_seq even again: delivered, the tuple written whole, cache_seq two on",
    "a grant ending in 1.5 s: delivered, cached",
    "well past its end, grant_gen unchanged: refused by the clock",
};
constexpr const char* kCacheWant = "yyynnnnnyyyn";

// True when one datagram from cli reached peer; a refused send (EPERM) is
// seen at once, without waiting for the receive timeout.
bool delivered(int cli, int peer) {
    char buf[8];
    return send(cli, "x", 1, 0) == 1 && recv(peer, buf, sizeof(buf), 0) == 1;
}

// Whether a socket's state (get_state) holds the cache for (kLiveUid,
// kLivePort, UDP) until `until` under `gen`, and no writer is at it.
bool cache_is(const std::optional<jg_sk_state>& st, std::uint64_t until, std::uint64_t gen) {
    return st && st->cached_until == until && st->cached_gen == gen && st->cached_uid == kLiveUid &&
           st->cached_port == kLivePort && st->cached_proto == JG_PROTO_UDP && st->cache_seq % 2 == 0;
}

std::uint64_t grant_gen() {
    std::uint32_t zero = 0;
    jg_config c{};
    if (bpf_map_lookup_elem(bpf_map__fd(g_skel->maps.jg_config), &zero, &c) != 0) return ~0ULL;
    return c.grant_gen;
}

// The grant of (kLiveUid, kLivePort, UDP), id 42, ending at `until`, and the
// programs told (grant_gen raised).
bool set_grant(std::uint64_t until) {
    const auto key = jg::make_uid_key(kLiveUid, kLivePort, jg::Proto::Udp);
    const auto v = jg::make_grant_val(until, 42);
    return bpf_map_update_elem(bpf_map__fd(g_skel->maps.jg_grants_uid), &key, &v, BPF_ANY) == 0 &&
           jgtest::grants_changed(g_skel);
}

// In the child, without a grant (deleted, grant_gen raised): the cache is
// one tuple, used only when read whole.  The states below are what two
// writers interleaving could leave, or a reader see, without cache_seq (a
// hook moving the socket to another principal or port while UDP egress
// refreshes the cache on another CPU).
void cache_tuple_steps(int cli, int peer, std::string& out) {
    auto st = hook_state();
    st.cached_uid = kLiveUid;
    st.cached_port = kLivePort + 1;  // another port's grant
    st.cached_proto = JG_PROTO_UDP;
    st.cached_gen = grant_gen();
    st.cached_until = jgtest::hour_from_now();
    if (!set_state(cli, st)) return;
    out += delivered(cli, peer) ? 'y' : 'n';
    st.cached_uid = kLiveUid + 1;  // another principal's grant
    st.cached_port = kLivePort;
    if (!set_state(cli, st)) return;
    out += delivered(cli, peer) ? 'y' : 'n';
    st.cached_uid = kLiveUid;
    st.cached_proto = JG_PROTO_TCP;  // another protocol's grant
    if (!set_state(cli, st)) return;
    out += delivered(cli, peer) ? 'y' : 'n';
    st.cached_proto = JG_PROTO_UDP;
    st.cache_seq = 7;  // this port's tuple, a writer at it
    if (!set_state(cli, st)) return;
    out += delivered(cli, peer) ? 'y' : 'n';
    const std::uint64_t until = jgtest::hour_from_now();
    if (!set_grant(until)) return;
    st = hook_state();
    st.cache_seq = 3;  // a writer at it
    if (!set_state(cli, st)) return;
    bool sent = delivered(cli, peer);
    auto now = get_state(cli);
    out += sent && now && now->cached_until == 0 && now->cached_gen == 0 && now->cached_uid == 0 &&
                   now->cache_seq == 3
               ? 'y'
               : 'n';
    st.cache_seq = 4;
    if (!set_state(cli, st)) return;
    sent = delivered(cli, peer);
    now = get_state(cli);
    out += sent && cache_is(now, until, grant_gen()) && now->cache_seq == 6 ? 'y' : 'n';
}

// In the child: the steps of kCacheSteps, appended to `out`.
void cache_steps(int cli, int peer, std::string& out) {
    const int grants = bpf_map__fd(g_skel->maps.jg_grants_uid);
    const auto key = jg::make_uid_key(kLiveUid, kLivePort, jg::Proto::Udp);
    std::uint64_t until = jgtest::hour_from_now();
    if (!set_grant(until) || !jgtest::protect(g_skel, kLivePort, 0, JG_PF_PROTECTED)) return;
    out += delivered(cli, peer) ? 'y' : 'n';
    out += cache_is(get_state(cli), until, grant_gen()) ? 'y' : 'n';
    if (bpf_map_delete_elem(grants, &key) != 0) return;
    out += delivered(cli, peer) ? 'y' : 'n';
    if (!jgtest::grants_changed(g_skel)) return;
    out += delivered(cli, peer) ? 'y' : 'n';
    const std::size_t tuple_steps_end = out.size() + 6;
    cache_tuple_steps(cli, peer, out);
    out.resize(tuple_steps_end, 'e');  // a step it could not make
    until = jg::boottime_ns() + 1500ULL * 1000000ULL;
    if (!set_grant(until)) return;
    const std::uint64_t gen = grant_gen();
    out += delivered(cli, peer) && cache_is(get_state(cli), until, gen) ? 'y' : 'n';
    if (jg::boottime_ns() >= until) return;  // too slow to have tested before the end: 'e'
    for (int i = 0; i < 50 && jg::boottime_ns() < until + 500000000ULL; ++i) usleep(100000);
    if (grant_gen() != gen || jg::boottime_ns() <= until) return;  // 'e': the step could not be made
    out += delivered(cli, peer) ? 'y' : 'n';
}

// In the child: a connected UDP socket with the state the sock_addr hooks
// leave, then the steps.
std::string cache_child() {
    const sockaddr_in at = loopback(kLivePort);
    const auto* sa = reinterpret_cast<const sockaddr*>(&at);
    const timeval wait{1, 0};
    const int srv = socket(AF_INET, SOCK_DGRAM, 0), cli = socket(AF_INET, SOCK_DGRAM, 0);
    std::string got;
    const jg_sk_state st = hook_state();
    if (srv >= 0 && cli >= 0 && bind(srv, sa, sizeof(at)) == 0 && connect(cli, sa, sizeof(at)) == 0 &&
        setsockopt(srv, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait)) == 0 && set_state(cli, st))
        cache_steps(cli, srv, got);
    jgtest::protect(g_skel, kLivePort, 0, 0);
    got.resize(std::size(kCacheSteps), 'e');
    return got;
}

TEST_CASE("attached: a socket's cached admission holds under its grant_gen, until its grant's end") {
    const auto run = jgtest::run_attached("cache", {g_skel->progs.jg_egress}, [](auto emit) {
        for (char c : cache_child()) emit(c);
    });
    jgtest::clear_map(g_skel->maps.jg_grants_uid);
    REQUIRE_MESSAGE(run.why.empty(), run.why);
    CHECK_MESSAGE(run.clean(), "child status " << run.status);
    const std::string& got = run.got;
    REQUIRE(got.size() == std::size(kCacheSteps));
    for (std::size_t i = 0; i < got.size(); ++i) {
        const std::string what = kCacheSteps[i];
        CAPTURE(what);
        CHECK(got[i] == kCacheWant[i]);
    }
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

int main(int argc, char** argv) { return jgtest::run_with_skeleton(argc, argv, g_skel); }

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
