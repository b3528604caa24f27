// What jg_xdp costs per frame next to an empty XDP program, measured in the
// same run with BPF_PROG_TEST_RUN (the kernel's own per-run average,
// opts.duration, in ns).  Each case is measured `rounds` times, interleaved
// with the others so that drift affects all alike; the median is reported.
//
//   bench_xdp [--json] [--repeat N] [--rounds N]
//
// Runs in a network namespace of its own; needs root.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fixture.h"
#include "jitgate.skel.h"
#include "packet.h"

using jgtest::Packet;
using Frame = std::vector<std::uint8_t>;
using namespace jgtest::wire;

namespace {

constexpr std::uint16_t kPort = 25432, kOpen = 8080, kSport = 40000;
constexpr const char* kPeer = "203.0.113.2";       // has a grant
constexpr const char* kStranger = "198.51.100.7";  // has none
constexpr const char* kLocal4 = "203.0.113.1";
constexpr const char* kLocal6 = "2001:db8:1::1";
constexpr std::uint32_t kMaxRepeat = 10000000, kMaxRounds = 21;

// The two instructions of an XDP program that passes everything, spelled as
// the kernel's BPF_MOV64_IMM(BPF_REG_0, XDP_PASS) and BPF_EXIT_INSN().
bpf_insn mov64_imm(std::uint8_t reg, std::int32_t imm) {
    bpf_insn i{};
    i.code = BPF_ALU64 | BPF_MOV | BPF_K;
    i.dst_reg = reg & 0xf;
    i.imm = imm;
    return i;
}
bpf_insn exit_insn() {
    bpf_insn i{};
    i.code = BPF_JMP | BPF_EXIT;
    return i;
}

bpf_insn call_helper(std::int32_t func) {
    bpf_insn i{};
    i.code = BPF_JMP | BPF_CALL;
    i.imm = func;
    return i;
}

int load_empty_xdp() {
    const bpf_insn insns[] = {mov64_imm(BPF_REG_0, XDP_PASS), exit_insn()};
    return bpf_prog_load(BPF_PROG_TYPE_XDP, "jg_empty", "GPL", insns, 2, nullptr);
}

// A reference for reading the allow path: the empty program plus one
// bpf_ktime_get_boot_ns() call, the clock jg_addr_grant reads on a hit.
int load_clock_xdp() {
    const bpf_insn insns[] = {call_helper(BPF_FUNC_ktime_get_boot_ns), mov64_imm(BPF_REG_0, XDP_PASS),
                              exit_insn()};
    return bpf_prog_load(BPF_PROG_TYPE_XDP, "jg_clock", "GPL", insns, 3, nullptr);
}

struct Case {
    std::string name;
    int prog_fd;
    Frame frame;
    std::uint32_t want;  // the verdict that proves the intended path ran
    std::vector<std::uint32_t> ns;
};

// One test run of `repeat` frames; the kernel's average ns per frame, or -1.
long measure(const Case& c, std::uint32_t repeat) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = c.frame.data(),
                .data_size_in = std::uint32_t(c.frame.size()), .repeat = int(repeat));
    if (bpf_prog_test_run_opts(c.prog_fd, &opts) != 0) {
        std::fprintf(stderr, "bench_xdp: test run of '%s' failed: %s\n", c.name.c_str(),
                     std::strerror(errno));
        return -1;
    }
    if (opts.retval != c.want) {
        std::fprintf(stderr,
                     "bench_xdp: '%s' returned %u, expected %u: the benchmark is not measuring that path\n",
                     c.name.c_str(), opts.retval, c.want);
        return -1;
    }
    return long(opts.duration);
}

double median(std::vector<std::uint32_t> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

bool parse_count(const char* text, std::uint32_t max, std::uint32_t* out) {
    char* end = nullptr;
    errno = 0;
    const unsigned long v = std::strtoul(text, &end, 10);
    if (errno || !end || *end || v < 1 || v > max) return false;
    *out = std::uint32_t(v);
    return true;
}

// Fills the loaded skeleton's maps; empty, or why it could not.
std::string setup(jitgate_bpf* skel) {
    if (!jgtest::set_config(skel, jgtest::own_netns_cookie()) ||
        !jgtest::protect(skel, kPort, JG_PF_PROTECTED, JG_PF_PROTECTED) ||
        !jgtest::add_local_addr(skel, kLocal4) || !jgtest::add_local_addr(skel, kLocal6) ||
        !jgtest::grant_remote(skel, kPeer, kPort, jg::Proto::Tcp, jgtest::hour_from_now(), 1))
        return "cannot fill the BPF maps";
    return {};
}

std::vector<Case> cases(int empty_fd, int clock_fd, int xdp_fd) {
    auto syn4 = [](const char* src, std::uint16_t dport) {
        return Packet().eth(kIPv4).ipv4(src, kLocal4, kTcp).tcp(kSport, dport).finish();
    };
    return {
        {"empty XDP program", empty_fd, syn4(kStranger, kOpen), XDP_PASS, {}},
        {"reference: empty + bpf_ktime_get_boot_ns()", clock_fd, syn4(kStranger, kOpen), XDP_PASS, {}},
        {"jg_xdp: tcp/ipv4, unprotected port", xdp_fd, syn4(kStranger, kOpen), XDP_PASS, {}},
        // Stops after the local-address lookup: what that lookup adds.
        {"jg_xdp: tcp/ipv4, protected, destination not local",
         xdp_fd,
         Packet().eth(kIPv4).ipv4(kStranger, "198.51.100.9", kTcp).tcp(kSport, kPort).finish(),
         XDP_PASS,
         {}},
        {"jg_xdp: tcp/ipv4, protected, no grant (deny)", xdp_fd, syn4(kStranger, kPort), XDP_DROP, {}},
        {"jg_xdp: tcp/ipv4, protected, valid grant (allow)", xdp_fd, syn4(kPeer, kPort), XDP_PASS, {}},
        {"jg_xdp: tcp/ipv6 + 3 ext headers, unprotected",
         xdp_fd,
         Packet()
             .eth(kIPv6)
             .ipv6("2001:db8:2::2", kLocal6, 0)
             .ext6(60)
             .ext6(43)
             .ext6(kTcp)
             .tcp(kSport, kOpen)
             .finish(),
         XDP_PASS,
         {}},
        {"jg_xdp: 802.1Q tag + tcp/ipv4, unprotected",
         xdp_fd,
         Packet()
             .eth(kIPv4)
             .vlan(0x8100, 10, kIPv4)
             .ipv4(kStranger, kLocal4, kTcp)
             .tcp(kSport, kOpen)
             .finish(),
         XDP_PASS,
         {}},
    };
}

void print_table(const std::vector<Case>& cs, std::uint32_t repeat, std::uint32_t rounds) {
    utsname u{};
    uname(&u);
    std::printf("XDP cost per frame, BPF_PROG_TEST_RUN, %u frames x %u interleaved rounds, kernel %s\n",
                repeat, rounds, u.release);
    std::printf("%-50s %9s %9s %9s %9s %7s\n", "case", "median ns", "min", "max", "vs empty", "ratio");
    const double empty = median(cs[0].ns);
    for (const auto& c : cs) {
        const double m = median(c.ns);
        const auto [lo, hi] = std::minmax_element(c.ns.begin(), c.ns.end());
        std::printf("%-50s %9.1f %9u %9u %+9.1f %6.2fx\n", c.name.c_str(), m, *lo, *hi, m - empty,
                    empty > 0 ? m / empty : 0.0);
    }
}

void print_json(const std::vector<Case>& cs, std::uint32_t repeat, std::uint32_t rounds) {
    utsname u{};
    uname(&u);
    const double empty = median(cs[0].ns);
    nlohmann::json out = {
        {"repeat", repeat}, {"rounds", rounds}, {"kernel", u.release}, {"unit", "ns/frame"}};
    out["cases"] = nlohmann::json::array();
    for (const auto& c : cs) {
        const double m = median(c.ns);
        out["cases"].push_back({{"name", c.name},
                                {"median_ns", m},
                                {"runs_ns", c.ns},
                                {"delta_vs_empty_ns", m - empty},
                                {"ratio_vs_empty", empty > 0 ? m / empty : 0.0}});
    }
    std::printf("%s\n", out.dump(2).c_str());
}

}  // namespace

int main(int argc, char** argv) {
    bool json = false;
    std::uint32_t repeat = 1000000, rounds = 5;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--json") {
            json = true;
        } else if (a == "--repeat" || a == "--rounds") {
            const std::uint32_t max = a == "--repeat" ? kMaxRepeat : kMaxRounds;
            if (i + 1 >= argc || !parse_count(argv[i + 1], max, a == "--repeat" ? &repeat : &rounds)) {
                std::fprintf(stderr, "bench_xdp: %s takes a number from 1 to %u\n", a.c_str(), max);
                return 2;
            }
            ++i;
        } else {
            std::fprintf(stderr, "bench_xdp: unknown option '%s': use [--json] [--repeat N] [--rounds N]\n",
                         a.c_str());
            return 2;
        }
    }
    if (geteuid() != 0) return jgtest::skip("needs root to load BPF programs and create a network namespace");
    if (auto why = jgtest::enter_private_netns(); !why.empty()) return jgtest::skip(why);
    jitgate_bpf* skel = jgtest::load_skeleton();
    if (!skel) return 1;
    if (auto why = setup(skel); !why.empty()) {
        jitgate_bpf__destroy(skel);
        return jgtest::skip(why);
    }
    const int empty_fd = load_empty_xdp(), clock_fd = load_clock_xdp();
    if (empty_fd < 0 || clock_fd < 0) {
        std::fprintf(stderr, "bench_xdp: cannot load the reference XDP programs: %s\n",
                     std::strerror(-(empty_fd < 0 ? empty_fd : clock_fd)));
        jitgate_bpf__destroy(skel);
        return 1;
    }
    // One CPU for every measurement: the comparison is within one core.
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    sched_setaffinity(0, sizeof(one), &one);

    auto cs = cases(empty_fd, clock_fd, bpf_program__fd(skel->progs.jg_xdp));
    const bool progress = !json && isatty(STDERR_FILENO);
    int rc = 0;
    for (std::uint32_t r = 0; r < rounds && rc == 0; ++r) {
        if (progress) std::fprintf(stderr, "round %u/%u\r", r + 1, rounds);
        for (auto& c : cs) {
            const long ns = measure(c, repeat);
            if (ns < 0) {
                rc = 1;
                break;
            }
            c.ns.push_back(std::uint32_t(ns));
        }
    }
    if (progress) std::fprintf(stderr, "%20s\r", "");
    if (rc == 0) json ? print_json(cs, repeat, rounds) : print_table(cs, repeat, rounds);
    close(clock_fd);
    close(empty_fd);
    jitgate_bpf__destroy(skel);
    return rc;
}
