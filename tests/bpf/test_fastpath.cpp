// BPF_PROG_TEST_RUN cases for the fast path of the remote-peer programs,
// jg_xdp and jg_ingress (ABI 4): the prefix trie skipped while
// jg_config.net_grants is 0, the bloom filter in front of jg_grants_addr,
// the admission cached in the flow entry (valid under jg_config.grant_gen,
// until the grant's end on CLOCK_BOOTTIME) and the per-CPU denial memo in
// front of jg_deny_rl, with the daemon's side of the filter and the memo.
// As in test_remote.cpp: the skeleton is loaded, never attached, in a
// network namespace of the test's own; ingress runs name a veth.
#define DOCTEST_CONFIG_IMPLEMENT
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <doctest/doctest.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "bpf/deny_memo.h"
#include "bpf/deny_windows.h"
#include "bpf/grant_bloom.h"
#include "bpf/grant_maps.h"
#include "bpf/skeleton.h"
#include "core/clock.h"
#include "core/kernel_grant.h"
#include "core/keys.h"
#include "fixture.h"
#include "jitgate.skel.h"
#include "packet.h"

using jgtest::Packet;
using Frame = std::vector<std::uint8_t>;
using namespace jgtest::wire;

namespace {

constexpr std::uint16_t kPort = 25432;  // tcp + udp protected, enforce, cut
constexpr std::uint64_t kGrantId = 7;
constexpr const char* kPeer4 = "203.0.113.2";
constexpr const char* kOther4 = "203.0.113.3";  // a second peer of the same /24
constexpr const char* kLocal4 = "203.0.113.1";
constexpr const char* kLocal6 = "2001:db8:1::1";
constexpr std::uint64_t kMs = 1000000ULL;

jitgate_bpf* g_skel = nullptr;
ring_buffer* g_rb = nullptr;
int g_ifindex = 0;  // jgt0, the veth ingress runs arrive on
std::vector<jg_event> g_events;

enum class Hook { Xdp, Ingress };

const char* hook_name(Hook h) { return h == Hook::Xdp ? "xdp" : "ingress"; }

Frame syn4_from(const char* src, std::uint16_t sport) {
    return Packet().eth(kIPv4).ipv4(src, kLocal4, kTcp).tcp(sport, kPort).finish();
}

// The program's return value, or -errno when test_run refused the run.
long run(Hook h, const Frame& f) {
    if (h == Hook::Xdp) return jgtest::test_run(bpf_program__fd(g_skel->progs.jg_xdp), f);
    __sk_buff ctx;
    std::memset(&ctx, 0, sizeof(ctx));
    ctx.ifindex = std::uint32_t(g_ifindex);
    return jgtest::test_run(bpf_program__fd(g_skel->progs.jg_ingress), f, &ctx);
}

long pass_value(Hook h) { return h == Hook::Xdp ? XDP_PASS : 1; }
long drop_value(Hook h) { return h == Hook::Xdp ? XDP_DROP : 0; }

std::uint64_t counter(std::uint32_t idx) { return jgtest::counter(g_skel, idx); }

int on_event(void*, void* data, size_t size) {
    jg_event e;
    std::memset(&e, 0, sizeof(e));
    std::memcpy(&e, data, std::min(size, sizeof(e)));
    g_events.push_back(e);
    return 0;
}

std::vector<jg_event> take_events() {
    ring_buffer__consume(g_rb);
    std::vector<jg_event> out;
    out.swap(g_events);
    return out;
}

jg_config config() {
    std::uint32_t zero = 0;
    jg_config c{};
    REQUIRE(bpf_map_lookup_elem(bpf_map__fd(g_skel->maps.jg_config), &zero, &c) == 0);
    return c;
}

// Grants, flows, windows, memos and any bloom filter gone; ports, local
// addresses and the netns cookie stay.
void reset_state() {
    for (bpf_map* m : {g_skel->maps.jg_grants_addr, g_skel->maps.jg_grants_net, g_skel->maps.jg_flows,
                       g_skel->maps.jg_deny_rl, g_skel->maps.jg_allow_rl})
        jgtest::clear_map(m);
    jgtest::clear_memos(g_skel);
    const std::uint32_t zero = 0;
    bpf_map_delete_elem(bpf_map__fd(g_skel->maps.jg_grants_bloom), &zero);
    REQUIRE(jgtest::change_config(g_skel, [](jg_config& c) {
        c.net_grants = 0;
        ++c.grant_gen;
    }));
    take_events();
}

// The single-host key of (src, kPort, tcp), as the programs look it up.
jg_addr_key host_key(const char* src) {
    const auto net = jg::parse_source(src);
    REQUIRE(net.ok());
    const jg::RemoteKey k = jg::make_remote_key(*net, kPort, jg::Proto::Tcp);
    REQUIRE(std::holds_alternative<jg_addr_key>(k));
    return std::get<jg_addr_key>(k);
}

bool grant(const char* src, std::uint64_t expires_ns = jgtest::hour_from_now(), std::uint64_t id = kGrantId) {
    return jgtest::grant_remote(g_skel, src, kPort, jg::Proto::Tcp, expires_ns, id);
}

// The jg_flows entry of (src, sport -> kPort, tcp); false when there is none.
bool flow(const char* src, std::uint16_t sport, jg_flow_val* out) {
    jg_flow_key k;
    std::memset(&k, 0, sizeof(k));
    std::memcpy(k.src, jgtest::addr(src).data(), 16);
    k.sport = sport;
    k.dport = kPort;
    k.proto = JG_PROTO_TCP;
    return bpf_map_lookup_elem(bpf_map__fd(g_skel->maps.jg_flows), &k, out) == 0;
}

// This process kept on one CPU for a scope: the denial memo is per CPU.
class PinnedCpu {
public:
    PinnedCpu() {
        sched_getaffinity(0, sizeof(old_), &old_);
        cpu_ = sched_getcpu();
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu_, &one);
        pinned_ = cpu_ >= 0 && sched_setaffinity(0, sizeof(one), &one) == 0;
    }
    ~PinnedCpu() { sched_setaffinity(0, sizeof(old_), &old_); }
    PinnedCpu(const PinnedCpu&) = delete;
    PinnedCpu& operator=(const PinnedCpu&) = delete;
    bool pinned() const { return pinned_; }
    std::uint32_t cpu() const { return std::uint32_t(cpu_); }

private:
    cpu_set_t old_{};
    int cpu_ = -1;
    bool pinned_ = false;
};

jg_deny_memo memo(std::uint32_t cpu) {
    jg_deny_memo m{};
    REQUIRE(bpf_map_lookup_elem(bpf_map__fd(g_skel->maps.jg_deny_memo), &cpu, &m) == 0);
    return m;
}

jg_rl_key rl_key(const char* src) { return jg::make_rl_addr_key(jgtest::addr(src), kPort, jg::Proto::Tcp); }

// The jg_deny_rl window of `key`'s count, or -1 without a window.
long rl_suppressed(const jg_rl_key& key) {
    jg_rl_val v;
    if (bpf_map_lookup_elem(bpf_map__fd(g_skel->maps.jg_deny_rl), &key, &v) != 0) return -1;
    return long(v.suppressed);
}

// Keeps `key`'s window (jg_deny_rl's and this CPU's memo's) open until
// `end_ns` (CLOCK_MONOTONIC_COARSE; 0: over now), as time would: the
// assertions then do not depend on how fast the machine runs them.
void set_window_end(const jg_rl_key& key, std::uint32_t cpu, std::uint64_t end_ns) {
    jg_rl_val v;
    const int rl = bpf_map__fd(g_skel->maps.jg_deny_rl);
    REQUIRE(bpf_map_lookup_elem(rl, &key, &v) == 0);
    v.window_end_ns = end_ns;
    REQUIRE(bpf_map_update_elem(rl, &key, &v, BPF_EXIST) == 0);
    jg_deny_memo m = memo(cpu);
    REQUIRE(std::memcmp(&m.key, &key, sizeof(key)) == 0);
    m.window_end_ns = end_ns;
    REQUIRE(bpf_map_update_elem(bpf_map__fd(g_skel->maps.jg_deny_memo), &cpu, &m, BPF_EXIST) == 0);
}

// An hour from now on the programs' rate-limit clock.
std::uint64_t coarse_hour_from_now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return std::uint64_t(ts.tv_sec) * 1000000000ULL + std::uint64_t(ts.tv_nsec) + 3600ULL * 1000000000ULL;
}

// The same for a window only jg_deny_rl holds (the memo busy elsewhere).
void hold_rl_window(const jg_rl_key& key) {
    jg_rl_val v;
    const int rl = bpf_map__fd(g_skel->maps.jg_deny_rl);
    REQUIRE(bpf_map_lookup_elem(rl, &key, &v) == 0);
    v.window_end_ns = coarse_hour_from_now();
    REQUIRE(bpf_map_update_elem(rl, &key, &v, BPF_EXIST) == 0);
}

// The denials of `key` not reported yet: its window's and every memo's.
std::uint64_t pending_denials(const jg_rl_key& key) {
    std::uint64_t n = std::uint64_t(std::max(0L, rl_suppressed(key)));
    const int fd = bpf_map__fd(g_skel->maps.jg_deny_memo);
    for (std::uint32_t i = 0; i < JG_MEMO_SLOTS; ++i) {
        jg_deny_memo m{};
        if (bpf_map_lookup_elem(fd, &i, &m) == 0 && std::memcmp(&m.key, &key, sizeof(key)) == 0)
            n += JG_MEMO_COUNT(m.pending);
    }
    return n;
}

// Every denial counted is reported once: the events' counts (1 + their
// suppressed) plus what is still pending equal the kernel's counter.
std::uint64_t reported(const std::vector<jg_event>& events) {
    std::uint64_t n = 0;
    for (const auto& e : events) n += 1 + e.suppressed;
    return n;
}

}  // namespace

TEST_CASE("prefix trie: skipped while jg_config.net_grants is 0, asked once it counts an entry") {
    for (Hook hook : {Hook::Xdp, Hook::Ingress}) {
        CAPTURE(hook_name(hook));
        reset_state();
        // A trie entry written by hand, without the count the daemon keeps:
        // the programs do not look in the trie, so the source is refused.
        const auto net = jg::parse_source("203.0.113.0/24");
        REQUIRE(net.ok());
        const auto key = std::get<jg_net_key>(jg::make_remote_key(*net, kPort, jg::Proto::Tcp));
        const jg_grant_val v = jg::make_grant_val(jgtest::hour_from_now(), 9);
        REQUIRE(bpf_map_update_elem(bpf_map__fd(g_skel->maps.jg_grants_net), &key, &v, BPF_ANY) == 0);
        REQUIRE(jgtest::grants_changed(g_skel));
        REQUIRE(config().net_grants == 0);
        const std::uint64_t denied = counter(JG_CNT_DENY);
        CHECK(run(hook, syn4_from(kPeer4, 40001)) == drop_value(hook));
        CHECK(counter(JG_CNT_DENY) == denied + 1);
        take_events();
        // Counted: the same entry grants.
        REQUIRE(jgtest::change_config(g_skel, [](jg_config& c) { c.net_grants = 1; }));
        REQUIRE(jgtest::grants_changed(g_skel));
        const std::uint64_t allowed = counter(JG_CNT_ALLOW);
        CHECK(run(hook, syn4_from(kPeer4, 40002)) == pass_value(hook));
        CHECK(counter(JG_CNT_DENY) == denied + 1);
        if (hook == Hook::Ingress) {
            CHECK(counter(JG_CNT_ALLOW) == allowed + 1);
            const auto events = take_events();
            REQUIRE(events.size() == 1);
            CHECK(events[0].grant_id == 9);
        }
        // A host grant still answers with the trie skipped.
        reset_state();
        REQUIRE(grant(kPeer4));
        REQUIRE(config().net_grants == 0);
        CHECK(run(hook, syn4_from(kPeer4, 40003)) == pass_value(hook));
    }
    reset_state();
}

TEST_CASE(
    "bloom filter: a key in it is looked up, a key not in it is refused unasked, none: the hash answers") {
    reset_state();
    // Both peers hold a grant in jg_grants_addr; the filter knows only kPeer4.
    REQUIRE(grant(kPeer4, jgtest::hour_from_now(), 7));
    REQUIRE(grant(kOther4, jgtest::hour_from_now(), 8));
    jg::GrantBloom bloom;
    bloom.attach(bpf_map__fd(g_skel->maps.jg_grants_bloom), 1024);
    struct Withdraw {  // other tests run without a filter
        jg::GrantBloom& b;
        ~Withdraw() { b.withdraw(); }
    } cleanup{bloom};
    const auto built = bloom.rebuild({host_key(kPeer4)});
    REQUIRE_MESSAGE(built.ok(), (built.ok() ? std::string() : built.error()));
    REQUIRE(bloom.active());
    // A filter may say "maybe" for a key it never got (one in ~8000 here:
    // one hash, its seed random per filter); then this test would not see
    // the skip, so such a filter is built again, with a new seed.
    auto says_maybe = [&](const char* addr) {
        jg_addr_key k = host_key(addr);
        return bpf_map_lookup_elem(bloom.fd(), nullptr, &k) == 0;
    };
    REQUIRE(says_maybe(kPeer4));
    for (int i = 0; i < 8 && says_maybe(kOther4); ++i) REQUIRE(bloom.rebuild({host_key(kPeer4)}).ok());
    REQUIRE(!says_maybe(kOther4));
    for (Hook hook : {Hook::Xdp, Hook::Ingress}) {
        CAPTURE(hook_name(hook));
        CHECK(run(hook, syn4_from(kPeer4, 40001)) == pass_value(hook));   // filter hit, hash hit
        CHECK(run(hook, syn4_from(kOther4, 40001)) == drop_value(hook));  // filter miss: hash skipped
    }
    // A source neither knows: refused either way.
    CHECK(run(Hook::Xdp, syn4_from("203.0.113.4", 40001)) == XDP_DROP);
    // Withdrawn (a rewrite in progress): the hash answers for every source.
    bloom.withdraw();
    REQUIRE(!bloom.active());
    for (Hook hook : {Hook::Xdp, Hook::Ingress}) {
        CAPTURE(hook_name(hook));
        CHECK(run(hook, syn4_from(kPeer4, 40002)) == pass_value(hook));
        CHECK(run(hook, syn4_from(kOther4, 40002)) == pass_value(hook));
    }
    // Rebuilt with every key: both pass again through the filter.
    REQUIRE(bloom.rebuild({host_key(kPeer4), host_key(kOther4)}).ok());
    CHECK(run(Hook::Xdp, syn4_from(kOther4, 40003)) == XDP_PASS);
    CHECK(run(Hook::Ingress, syn4_from(kOther4, 40003)) == 1);
    // A source the filter rules out still has the trie: a prefix grant
    // (counted) admits it.
    const char* const stranger = "203.0.113.5";
    CHECK(run(Hook::Xdp, syn4_from(stranger, 40001)) == XDP_DROP);
    REQUIRE(
        jgtest::grant_remote(g_skel, "203.0.113.0/24", kPort, jg::Proto::Tcp, jgtest::hour_from_now(), 9));
    REQUIRE(config().net_grants == 1);
    for (Hook hook : {Hook::Xdp, Hook::Ingress}) {
        CAPTURE(hook_name(hook));
        CHECK(run(hook, syn4_from(stranger, 40002)) == pass_value(hook));
    }
    bloom.withdraw();
    reset_state();
}

// jg_wake, the time before which a record does not wake the ring's reader.
void set_wake(std::uint64_t ns) {
    const std::uint32_t zero = 0;
    REQUIRE(bpf_map_update_elem(bpf_map__fd(g_skel->maps.jg_wake), &zero, &ns, BPF_ANY) == 0);
}

std::uint64_t wake_at() {
    const std::uint32_t zero = 0;
    std::uint64_t ns = 0;
    REQUIRE(bpf_map_lookup_elem(bpf_map__fd(g_skel->maps.jg_wake), &zero, &ns) == 0);
    return ns;
}

std::uint64_t coarse_now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return std::uint64_t(ts.tv_sec) * 1000000000ULL + std::uint64_t(ts.tv_nsec);
}

TEST_CASE("ring wake-ups: a denial that finds the reader caught up wakes it, at most once per gap") {
    reset_state();
    // An epoll of our own on the ring, edge-triggered: it reports the ring
    // once per wake-up.
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(ep >= 0);
    struct Close {
        int fd;
        ~Close() { close(fd); }
    } closer{ep};
    epoll_event add{};
    add.events = EPOLLIN | EPOLLET;
    REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, bpf_map__fd(g_skel->maps.jg_events), &add) == 0);
    // Waits up to `ms` for a wake-up: the kernel sends it from an irq_work,
    // at once here, later on a PREEMPT_RT kernel (its own thread).
    auto woken = [&](int ms = 0) {
        epoll_event ev{};
        return epoll_wait(ep, &ev, 1, ms) == 1;
    };
    woken();  // whatever the set-up woke
    CHECK(!woken());

    // Within the gap: the record waits, nobody is woken.
    set_wake(UINT64_MAX);
    CHECK(run(Hook::Ingress, syn4_from("203.0.113.21", 40001)) == 0);
    CHECK(!woken());
    CHECK(take_events().size() == 1);  // it is there all the same
    CHECK(!woken());

    // After it: the reader is woken, and the next gap starts now.
    set_wake(0);
    const std::uint64_t before = coarse_now();
    CHECK(run(Hook::Ingress, syn4_from("203.0.113.22", 40001)) == 0);
    const std::uint64_t after = coarse_now();
    CHECK(woken(1000));
    CHECK(take_events().size() == 1);
    CHECK(wake_at() >= before + JG_RING_WAKE_GAP_NS);
    CHECK(wake_at() <= after + JG_RING_WAKE_GAP_NS);
    CHECK(!woken());

    // A record behind another one that waits wakes nobody (the reader had
    // not caught up) and leaves the gap alone.
    set_wake(0);
    CHECK(run(Hook::Ingress, syn4_from("203.0.113.23", 40001)) == 0);
    CHECK(woken(1000));
    const std::uint64_t gap_end = wake_at();
    set_wake(0);
    CHECK(run(Hook::Ingress, syn4_from("203.0.113.24", 40001)) == 0);
    CHECK(!woken());
    CHECK(wake_at() == 0);
    CHECK(gap_end > 0);
    CHECK(take_events().size() == 2);
    set_wake(0);
    reset_state();
}

TEST_CASE("ingress: a flow's cached admission holds while grant_gen stands, and ends when it changes") {
    reset_state();
    const std::uint64_t until = jgtest::hour_from_now();
    REQUIRE(grant(kPeer4, until, 7));
    const std::uint64_t gen = config().grant_gen;
    CHECK(run(Hook::Ingress, syn4_from(kPeer4, 40001)) == 1);
    jg_flow_val f{};
    REQUIRE(flow(kPeer4, 40001, &f));
    CHECK(f.grant_id == 7);
    CHECK(f.cached_until == until);
    CHECK(f.cached_gen == gen);
    CHECK(take_events().size() == 1);

    // The grant leaves jg_grants_addr and grant_gen is not raised (the
    // daemon raises it right after; here it does not): the flow's packets
    // are admitted from the cache alone, a new flow asks the hash.
    const jg_addr_key k = host_key(kPeer4);
    REQUIRE(bpf_map_delete_elem(bpf_map__fd(g_skel->maps.jg_grants_addr), &k) == 0);
    const std::uint64_t allowed = counter(JG_CNT_ALLOW);
    CHECK(run(Hook::Ingress, syn4_from(kPeer4, 40001)) == 1);
    CHECK(run(Hook::Ingress, syn4_from(kPeer4, 40001)) == 1);
    CHECK(run(Hook::Ingress, syn4_from(kPeer4, 40002)) == 0);
    CHECK(counter(JG_CNT_ALLOW) == allowed);

    // The generation moves on: the cached admission no longer holds.
    REQUIRE(jgtest::grants_changed(g_skel));
    CHECK(run(Hook::Ingress, syn4_from(kPeer4, 40001)) == 0);
    CHECK(counter(JG_CNT_ALLOW) == allowed);

    // A grant again: the flow is admitted and cached under the new
    // generation, reported once under the new grant.
    take_events();
    REQUIRE(grant(kPeer4, until, 8));
    CHECK(run(Hook::Ingress, syn4_from(kPeer4, 40001)) == 1);
    REQUIRE(flow(kPeer4, 40001, &f));
    CHECK(f.grant_id == 8);
    CHECK(f.cached_gen == config().grant_gen);
    const auto events = take_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].grant_id == 8);
    reset_state();
}

TEST_CASE("a cached flow ends exactly with its grant, on CLOCK_BOOTTIME, without a new grant_gen") {
    reset_state();
    // A window wide enough for two test runs on a loaded machine.
    const std::uint64_t until = jg::boottime_ns() + 1500 * kMs;
    REQUIRE(grant(kPeer4, until, 7));
    const std::uint64_t gen = config().grant_gen;
    CHECK(run(Hook::Ingress, syn4_from(kPeer4, 40001)) == 1);  // admitted, cached
    CHECK(run(Hook::Ingress, syn4_from(kPeer4, 40001)) == 1);  // from the cache
    jg_flow_val f{};
    REQUIRE(flow(kPeer4, 40001, &f));
    CHECK(f.cached_until == until);
    CHECK(f.cached_gen == gen);
    REQUIRE_MESSAGE(jg::boottime_ns() < until, "the machine was too slow to test before the grant's end");

    // Well past the end (bounded): nothing changed but the clock.
    for (int i = 0; i < 50 && jg::boottime_ns() < until + 500 * kMs; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    REQUIRE(jg::boottime_ns() >= until + 500 * kMs);
    CHECK(config().grant_gen == gen);
    const std::uint64_t denied = counter(JG_CNT_DENY);
    CHECK(run(Hook::Ingress, syn4_from(kPeer4, 40001)) == 0);
    CHECK(run(Hook::Xdp, syn4_from(kPeer4, 40001)) == XDP_DROP);
    CHECK(counter(JG_CNT_DENY) == denied + 2);
    // The entry still says generation `gen`: only the clock refused it.
    REQUIRE(flow(kPeer4, 40001, &f));
    CHECK(f.cached_gen == gen);
    reset_state();
}

TEST_CASE("denial memo: one source's repeated denials count in this CPU's memo, the totals stay exact") {
    const PinnedCpu cpu;
    REQUIRE_MESSAGE(cpu.pinned(), "cannot keep the test on one CPU (sched_setaffinity)");
    REQUIRE(cpu.cpu() < JG_MEMO_SLOTS);
    for (Hook hook : {Hook::Xdp, Hook::Ingress}) {
        CAPTURE(hook_name(hook));
        reset_state();
        const jg_rl_key key = rl_key(kPeer4);
        const std::uint64_t before = counter(JG_CNT_DENY);
        std::vector<jg_event> events;
        // The first denial opens the window (an event) and the memo takes
        // the principal; the next four are counted in the memo only.
        CHECK(run(hook, syn4_from(kPeer4, 40001)) == drop_value(hook));
        set_window_end(key, cpu.cpu(), coarse_hour_from_now());
        for (std::uint16_t i = 1; i < 5; ++i)
            CHECK(run(hook, syn4_from(kPeer4, std::uint16_t(40001 + i))) == drop_value(hook));
        auto got = take_events();
        REQUIRE(got.size() == 1);
        CHECK(got[0].suppressed == 0);
        events.insert(events.end(), got.begin(), got.end());
        jg_deny_memo m = memo(cpu.cpu());
        CHECK(std::memcmp(&m.key, &key, sizeof(key)) == 0);
        CHECK(JG_MEMO_COUNT(m.pending) == 4);
        CHECK(int(m.verdict) == JG_VERDICT_DENY);
        CHECK(int(m.hook) == (hook == Hook::Xdp ? JG_HOOK_XDP : JG_HOOK_INGRESS));
        CHECK(rl_suppressed(key) == 0);  // no jg_deny_rl write for them
        CHECK(counter(JG_CNT_DENY) - before == 5);
        CHECK(reported(events) + pending_denials(key) == 5);

        // Another source while the memo is busy: a window of its own in
        // jg_deny_rl; the memo keeps its principal and count.
        const jg_rl_key other = rl_key(kOther4);
        CHECK(run(hook, syn4_from(kOther4, 40001)) == drop_value(hook));
        hold_rl_window(other);
        CHECK(run(hook, syn4_from(kOther4, 40002)) == drop_value(hook));
        got = take_events();
        REQUIRE(got.size() == 1);
        events.insert(events.end(), got.begin(), got.end());
        CHECK(rl_suppressed(other) == 1);
        m = memo(cpu.cpu());
        CHECK(std::memcmp(&m.key, &key, sizeof(key)) == 0);
        CHECK(JG_MEMO_COUNT(m.pending) == 4);

        // The window over: the memo's count goes into the next event.
        set_window_end(key, cpu.cpu(), 0);
        CHECK(run(hook, syn4_from(kPeer4, 40010)) == drop_value(hook));
        got = take_events();
        REQUIRE(got.size() == 1);
        CHECK(got[0].suppressed == 4);
        events.insert(events.end(), got.begin(), got.end());
        CHECK(JG_MEMO_COUNT(memo(cpu.cpu()).pending) == 0);
        CHECK(counter(JG_CNT_DENY) - before == 8);
        CHECK(reported(events) + pending_denials(key) + pending_denials(other) == 8);
    }
    reset_state();
}

TEST_CASE("denial memo: the daemon takes an idle memo's count once (jg::DenyMemo)") {
    const PinnedCpu cpu;
    REQUIRE_MESSAGE(cpu.pinned(), "cannot keep the test on one CPU (sched_setaffinity)");
    reset_state();
    jg::DenyMemo memos;
    REQUIRE(memos.attach(bpf_map__fd(g_skel->maps.jg_deny_memo)) == "");
    CHECK(run(Hook::Xdp, syn4_from(kPeer4, 40001)) == XDP_DROP);
    set_window_end(rl_key(kPeer4), cpu.cpu(), coarse_hour_from_now());
    for (std::uint16_t i = 1; i < 4; ++i)
        CHECK(run(Hook::Xdp, syn4_from(kPeer4, std::uint16_t(40001 + i))) == XDP_DROP);
    REQUIRE(take_events().size() == 1);
    REQUIRE(JG_MEMO_COUNT(memo(cpu.cpu()).pending) == 3);
    // Not idle yet (its window has not even ended): nothing taken.
    CHECK(memos.take_idle(0).empty());
    // Long idle: its count, once, as a closed deny window of kPeer4.
    const std::uint64_t far = ~0ULL / 2;
    const auto taken = memos.take_idle(far);
    REQUIRE(taken.size() == 1);
    CHECK(!taken[0].allow);
    CHECK(!taken[0].who.is_uid);
    CHECK(taken[0].who.src == kPeer4);
    CHECK(taken[0].port == kPort);
    CHECK(taken[0].suppressed == 3);
    CHECK(int(taken[0].verdict) == JG_VERDICT_DENY);
    CHECK(int(taken[0].hook) == JG_HOOK_XDP);
    CHECK(JG_MEMO_COUNT(memo(cpu.cpu()).pending) == 0);
    CHECK(memos.take_idle(far).empty());
    CHECK(pending_denials(rl_key(kPeer4)) == 0);
    reset_state();
}

TEST_CASE("denial memo: the daemon's closing records and the events together count every denial once") {
    const PinnedCpu cpu;
    REQUIRE_MESSAGE(cpu.pinned(), "cannot keep the test on one CPU (sched_setaffinity)");
    reset_state();
    auto maps = jg::KernelMaps::of(g_skel);
    REQUIRE_MESSAGE(maps.ok(), (maps.ok() ? std::string() : maps.error()));
    jg::DenyMemo memos;
    REQUIRE(memos.attach(maps->memo_fd) == "");
    const jg::DenyWindows windows(*maps, memos);
    const std::uint64_t before = counter(JG_CNT_DENY);
    // kPeer4 in the memo (2 pending), kOther4 in jg_deny_rl (1 suppressed)
    // while the memo is busy with kPeer4.
    CHECK(run(Hook::Xdp, syn4_from(kPeer4, 40001)) == XDP_DROP);
    set_window_end(rl_key(kPeer4), cpu.cpu(), coarse_hour_from_now());
    CHECK(run(Hook::Xdp, syn4_from(kPeer4, 40002)) == XDP_DROP);
    CHECK(run(Hook::Xdp, syn4_from(kOther4, 40001)) == XDP_DROP);
    hold_rl_window(rl_key(kOther4));
    CHECK(run(Hook::Xdp, syn4_from(kPeer4, 40003)) == XDP_DROP);
    CHECK(run(Hook::Xdp, syn4_from(kOther4, 40002)) == XDP_DROP);
    const auto events = take_events();
    CHECK(events.size() == 2);
    REQUIRE(JG_MEMO_COUNT(memo(cpu.cpu()).pending) == 2);
    REQUIRE(rl_suppressed(rl_key(kOther4)) == 1);
    // Long idle: one closing record per principal, with its whole count.
    const std::uint64_t far = ~0ULL / 2;
    const jg::ClosedWindows closed = windows.close_idle(far);
    REQUIRE(closed.deny.size() == 2);
    std::uint64_t in_records = 0;
    for (const auto& w : closed.deny) {
        CHECK(w.who.src == (w.suppressed == 2 ? kPeer4 : kOther4));
        in_records += w.suppressed;
    }
    CHECK(in_records == 3);
    CHECK(reported(events) + in_records == counter(JG_CNT_DENY) - before);
    CHECK(windows.close_idle(far).deny.empty());
    reset_state();
}

namespace {

// A remote grant as the daemon hands it to GrantMaps.
jg::KernelGrant kernel_grant(std::int64_t id, const char* source) {
    jg::KernelGrant g;
    g.id = id;
    auto net = jg::parse_source(source);
    REQUIRE(net.ok());
    g.src = *net;
    g.port = kPort;
    g.proto = jg::Proto::Tcp;
    g.expires_boot_ns = jgtest::hour_from_now();
    return g;
}

// The daemon's GrantMaps over this test's maps, with a bloom filter that
// is withdrawn again at the end (the other tests run without one).
struct DaemonGrants {
    explicit DaemonGrants(const jg::KernelMaps& m) : maps(m), grants(maps, bloom) {
        bloom.attach(maps.bloom_fd, maps.grant_capacity);
    }
    ~DaemonGrants() { bloom.withdraw(); }
    DaemonGrants(const DaemonGrants&) = delete;
    DaemonGrants& operator=(const DaemonGrants&) = delete;
    jg::KernelMaps maps;
    jg::GrantBloom bloom;
    const jg::GrantMaps grants;  // after maps and bloom, which it points to
};

jg::KernelMaps kernel_maps() {
    auto maps = jg::KernelMaps::of(g_skel);
    REQUIRE_MESSAGE(maps.ok(), (maps.ok() ? std::string() : maps.error()));
    return *maps;
}

}  // namespace

TEST_CASE("the daemon's GrantMaps keep the fast path exact: bloom filter, trie count, grant generation") {
    reset_state();
    DaemonGrants d(kernel_maps());
    const jg::GrantMaps& grants = d.grants;
    jg::GrantBloom& bloom = d.bloom;
    const auto host7 = kernel_grant(7, kPeer4), host8 = kernel_grant(8, kOther4);
    const auto net9 = kernel_grant(9, "203.0.113.0/24");

    // Startup: the maps written wholesale, then a filter of their keys.
    const jg::Reconciled r = grants.reconcile({host7});
    CHECK(r.errors.empty());
    REQUIRE(bloom.active());
    CHECK(run(Hook::Xdp, syn4_from(kPeer4, 40001)) == XDP_PASS);
    CHECK(run(Hook::Ingress, syn4_from(kPeer4, 40001)) == 1);  // flow cached
    CHECK(run(Hook::Xdp, syn4_from(kOther4, 40001)) == XDP_DROP);
    // A new host grant reaches the filter before the hash.
    REQUIRE(grants.put(host8).ok());
    for (Hook hook : {Hook::Xdp, Hook::Ingress}) {
        CAPTURE(hook_name(hook));
        CHECK(run(hook, syn4_from(kOther4, 40002)) == pass_value(hook));
    }
    // A removal: the cached flow ends at once; the stale filter costs a
    // lookup, no wrong answer.
    CHECK(run(Hook::Ingress, syn4_from(kPeer4, 40001)) == 1);  // cached under this generation
    grants.remove(host7);
    CHECK(run(Hook::Ingress, syn4_from(kPeer4, 40001)) == 0);
    CHECK(run(Hook::Xdp, syn4_from(kPeer4, 40001)) == XDP_DROP);
    CHECK(run(Hook::Xdp, syn4_from(kOther4, 40003)) == XDP_PASS);
    // A prefix grant: counted before it is written, uncounted after removal.
    REQUIRE(grants.put(net9).ok());
    CHECK(config().net_grants == 1);
    for (Hook hook : {Hook::Xdp, Hook::Ingress}) {
        CAPTURE(hook_name(hook));
        CHECK(run(hook, syn4_from(kPeer4, 40004)) == pass_value(hook));
    }
    grants.remove(net9);
    CHECK(config().net_grants == 0);
    for (Hook hook : {Hook::Xdp, Hook::Ingress}) {
        CAPTURE(hook_name(hook));
        CHECK(run(hook, syn4_from(kPeer4, 40004)) == drop_value(hook));
    }
    bloom.withdraw();
    reset_state();
}

TEST_CASE(
    "GrantMaps at start: entries no active grant has leave first, so a full map takes every active grant") {
    reset_state();
    struct ClearUids {  // other tests expect jg_grants_uid empty
        ~ClearUids() { jgtest::clear_map(g_skel->maps.jg_grants_uid); }
    } clear_uids;
    DaemonGrants d(kernel_maps());
    const jg::GrantMaps& grants = d.grants;
    jgtest::clear_map(g_skel->maps.jg_grants_uid);
    const std::uint32_t cap = d.maps.grant_capacity;
    REQUIRE(cap > 100);
    // Entries of grants that ended while no daemon ran: 100 local users.
    const int uid_fd = bpf_map__fd(g_skel->maps.jg_grants_uid);
    for (std::uint32_t i = 0; i < 100; ++i) {
        const jg_uid_key k{i + 1, kPort, JG_PROTO_TCP, 0};
        const jg_grant_val v = jg::make_grant_val(jgtest::hour_from_now(), i + 1);
        REQUIRE(bpf_map_update_elem(uid_fd, &k, &v, BPF_ANY) == 0);
    }
    // As many active local grants as the map holds, one of them under a
    // stale entry's key with a new id (overwritten, not removed first).
    std::vector<jg::KernelGrant> active;
    for (std::uint32_t i = 0; i < cap; ++i) {
        jg::KernelGrant g;
        g.id = 1000 + i;
        g.uid = i == 0 ? 1 : 100000 + i;
        g.port = kPort;
        g.proto = jg::Proto::Tcp;
        g.expires_boot_ns = jgtest::hour_from_now();
        active.push_back(g);
    }
    const jg::Reconciled r = grants.reconcile(active);
    CHECK(r.errors.empty());
    CHECK(r.removed.size() == 99);
    std::uint32_t held = 0;
    jg_uid_key k{}, next{};
    for (const void* at = nullptr; bpf_map_get_next_key(uid_fd, at, &next) == 0 && held <= cap; at = &k) {
        k = next;
        ++held;
    }
    CHECK(held == cap);
    const jg_uid_key first{1, kPort, JG_PROTO_TCP, 0};
    jg_grant_val v{};
    REQUIRE(bpf_map_lookup_elem(uid_fd, &first, &v) == 0);
    CHECK(v.grant_id == 1000);
}

namespace {

std::string setup() {
    if (auto e = jgtest::enter_private_netns(); !e.empty()) return e;
    if (!jgtest::run_command({"ip", "link", "add", "jgt0", "type", "veth", "peer", "name", "jgt1"}) ||
        !jgtest::run_command({"ip", "link", "set", "jgt0", "up"}))
        return "cannot create a veth pair in the test's network namespace (needs iproute2's ip)";
    g_ifindex = int(if_nametoindex("jgt0"));
    if (g_ifindex <= 1) return "the veth jgt0 has no usable ifindex";
    const std::uint64_t cookie = jgtest::own_netns_cookie();
    if (!cookie) return "the kernel does not report network namespace cookies (SO_NETNS_COOKIE)";
    g_skel = jgtest::load_skeleton();
    if (!g_skel) std::exit(1);
    if (!jgtest::set_config(g_skel, cookie) ||
        !jgtest::protect(g_skel, kPort, JG_PF_PROTECTED, JG_PF_PROTECTED) ||
        !jgtest::add_local_addr(g_skel, kLocal4) || !jgtest::add_local_addr(g_skel, kLocal6))
        return "cannot fill the BPF maps";
    g_rb = ring_buffer__new(bpf_map__fd(g_skel->maps.jg_events), on_event, nullptr, nullptr);
    if (!g_rb) return "cannot open the event ring buffer";
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    if (geteuid() != 0) return jgtest::skip("needs root to load BPF programs and create a network namespace");
    if (auto why = setup(); !why.empty()) {
        if (g_skel) jitgate_bpf__destroy(g_skel);
        return jgtest::skip(why);
    }
    doctest::Context ctx(argc, argv);
    const int rc = ctx.run();
    ring_buffer__free(g_rb);
    jitgate_bpf__destroy(g_skel);
    return rc;
}
