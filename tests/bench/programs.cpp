// Figures 1 and 2: what jitgate's XDP and cgroup_skb programs cost per
// packet (BPF_PROG_TEST_RUN: the kernel's own average over `repeat` runs),
// each path next to an empty program of the same type, with the benchmark's
// grants loaded.  Cases are measured in interleaved rounds, so that drift
// touches all alike; per round, each case is paired with its reference and
// the median of the paired differences (and ratios) is reported.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "../bpf/packet.h"
#include "bench.h"
#include "env.h"
#include "raw_progs.h"

namespace jgbench {

namespace {

using jgtest::Packet;
using Frame = std::vector<std::uint8_t>;
using namespace jgtest::wire;

constexpr std::uint16_t kSport = 40000;

struct Case {
    int figure;
    std::string id, what;
    int prog_fd;
    Frame frame;
    std::optional<__sk_buff> ctx;
    std::uint32_t want;  // the verdict that proves the intended path ran
    int ref;             // index of the reference case, -1 for a reference
    std::vector<double> ns;
};

// The kernel's average ns per run over `repeat` runs, or an error sentence.
std::string measure(Case& c, std::uint32_t repeat) {
    __sk_buff ctx_copy;
    if (c.ctx) ctx_copy = *c.ctx;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = c.frame.data(),
                .data_size_in = std::uint32_t(c.frame.size()), .ctx_in = c.ctx ? &ctx_copy : nullptr,
                .ctx_size_in = c.ctx ? std::uint32_t(sizeof(ctx_copy)) : 0U, .repeat = int(repeat));
    if (bpf_prog_test_run_opts(c.prog_fd, &opts) != 0)
        return "test run of " + c.id + " failed: " + std::strerror(errno);
    if (opts.retval != c.want)
        return c.id + " returned " + std::to_string(opts.retval) + ", not " + std::to_string(c.want) +
               ": the benchmark would not measure that path";
    c.ns.push_back(double(opts.duration));
    return {};
}

}  // namespace

void bench_programs(const Settings& s, Env& env, std::vector<Row>& rows) {
    const int empty_xdp = load_empty_xdp(), empty_skb = load_empty_skb();
    const int clock_xdp = load_clock_xdp(), clock_skb = load_clock_skb();
    const int xdp = bpf_program__fd(env.skel->progs.jg_xdp);
    const int ingress = bpf_program__fd(env.skel->progs.jg_ingress);
    const int egress = bpf_program__fd(env.skel->progs.jg_egress);
    auto syn4 = [&](const char* src, std::uint16_t dport) {
        return Packet().eth(kIPv4).ipv4(src, kLocal4, kTcp).tcp(kSport, dport).finish();
    };
    auto lo4 = [&](std::uint8_t proto, std::uint16_t dport) {
        auto p = Packet().eth(kIPv4).ipv4("127.0.0.1", "127.0.0.1", proto);
        return (proto == kTcp ? p.tcp(kSport, dport) : p.udp(kSport, dport)).finish();
    };
    __sk_buff in_ctx;
    std::memset(&in_ctx, 0, sizeof(in_ctx));
    in_ctx.ifindex = std::uint32_t(env.dummy_ifindex);  // arrived on an interface, not lo

    std::vector<Case> cs;
    auto add = [&](Case c) {
        cs.push_back(std::move(c));
        return int(cs.size() - 1);
    };
    const int rx = add({1,
                        "xdp_empty",
                        "empty XDP program",
                        empty_xdp,
                        syn4(kStranger4, env.open_port),
                        {},
                        XDP_PASS,
                        -1,
                        {}});
    // No goal: what the allow paths' clock read costs alone, in this run.
    add({1,
         "xdp_clock",
         "the clock alone: empty XDP program + CLOCK_BOOTTIME read",
         clock_xdp,
         syn4(kStranger4, env.open_port),
         {},
         XDP_PASS,
         rx,
         {}});
    add({1,
         "xdp_unprotected",
         "XDP, unprotected port",
         xdp,
         syn4(kStranger4, env.open_port),
         {},
         XDP_PASS,
         rx,
         {}});
    add({1,
         "xdp_deny",
         "XDP, protected port, no grant (drop)",
         xdp,
         syn4(kStranger4, env.port),
         {},
         XDP_DROP,
         rx,
         {}});
    add({1,
         "xdp_allow",
         "XDP, protected port, granted source (pass)",
         xdp,
         syn4(kPeer4, env.port),
         {},
         XDP_PASS,
         rx,
         {}});
    const int ri = add({2,
                        "skb_empty_ingress",
                        "empty cgroup_skb program (ingress context)",
                        empty_skb,
                        syn4(kStranger4, env.open_port),
                        in_ctx,
                        1,
                        -1,
                        {}});
    add({2,
         "skb_clock",
         "the clock alone: empty cgroup_skb program + CLOCK_BOOTTIME read",
         clock_skb,
         syn4(kStranger4, env.open_port),
         in_ctx,
         1,
         ri,
         {}});
    add({2,
         "ingress_unprotected",
         "cgroup_skb/ingress, unprotected port",
         ingress,
         syn4(kStranger4, env.open_port),
         in_ctx,
         1,
         ri,
         {}});
    add({2,
         "ingress_deny",
         "cgroup_skb/ingress, protected port, no grant (drop)",
         ingress,
         syn4(kStranger4, env.port),
         in_ctx,
         0,
         ri,
         {}});
    add({2,
         "ingress_allow",
         "cgroup_skb/ingress, protected port, granted source",
         ingress,
         syn4(kPeer4, env.port),
         in_ctx,
         1,
         ri,
         {}});
    const int re = add({2,
                        "skb_empty_egress",
                        "empty cgroup_skb program (egress context, lo)",
                        empty_skb,
                        lo4(kTcp, env.open_port),
                        {},
                        1,
                        -1,
                        {}});
    add({2,
         "egress_unprotected",
         "cgroup_skb/egress, unprotected port",
         egress,
         lo4(kTcp, env.open_port),
         {},
         1,
         re,
         {}});
    add({2,
         "egress_deny",
         "cgroup_skb/egress, protected port, no grant (udp, drop)",
         egress,
         lo4(kUdp, env.port),
         {},
         0,
         re,
         {}});
    add({2,
         "egress_allow",
         "cgroup_skb/egress, protected port, granted user (tcp)",
         egress,
         lo4(kTcp, env.port),
         {},
         1,
         re,
         {}});

    std::string why;
    if (empty_xdp < 0 || empty_skb < 0 || clock_xdp < 0 || clock_skb < 0)
        why = "cannot load the empty reference programs";
    // One CPU for every measurement: the comparison is within one core.
    pin_to_cpu(sched_getcpu());
    const std::uint32_t repeat = s.quick ? 200000 : 1000000;
    for (std::uint32_t r = 0; r < s.rounds && why.empty(); ++r) {
        progress("figures 1-2: round %u/%u (%u packets per case)", r + 1, s.rounds, repeat);
        for (auto& c : cs)
            if (why = measure(c, repeat); !why.empty()) break;
    }
    if (empty_xdp >= 0) close(empty_xdp);
    if (empty_skb >= 0) close(empty_skb);
    if (clock_xdp >= 0) close(clock_xdp);
    if (clock_skb >= 0) close(clock_skb);

    const std::string how = "BPF_PROG_TEST_RUN, " + std::to_string(repeat) + " packets x " +
                            std::to_string(s.rounds) + " interleaved rounds, " + std::to_string(env.grants) +
                            " grants loaded";
    for (const auto& c : cs) {
        if (c.ref < 0) continue;
        Row row{c.figure, c.id, c.what};
        row.unit = "ns/packet";
        row.reference = cs[std::size_t(c.ref)].what;
        if (!why.empty()) {
            row.note = "not measured: " + why;
            rows.push_back(row);
            continue;
        }
        const auto& ref = cs[std::size_t(c.ref)].ns;
        std::vector<double> delta, ratio;
        for (std::size_t i = 0; i < c.ns.size(); ++i) {
            delta.push_back(c.ns[i] - ref[i]);
            ratio.push_back(ref[i] > 0 ? c.ns[i] / ref[i] : 0);
        }
        row.value = median(c.ns);
        row.reference_value = median(ref);
        const double d = median(delta), q = median(ratio);
        row.note = how;
        row.measures["delta_ns"] = d;
        row.measures["ratio"] = q;
        row.comparison = c.figure == 1 ? (d >= 0 ? "+" : "") + num(d) + " ns" : num(q, 2) + "x";
        rows.push_back(row);
    }
}

}  // namespace jgbench
