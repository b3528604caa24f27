// Figure 4: a deny flood.  A generator in a peer network namespace sends TCP
// SYNs from random 2001:db8::/32 sources (none with a grant) to the
// protected port through a veth pair; on this side either jitgate's XDP
// program or an nftables netdev ingress chain with the same grants in a set
// drops them.  Figure: packets dropped per second, each variant in
// interleaved rounds.  Two generators, two rows:
//  - frames (the goal): BPF_PROG_RUN in live-frames mode runs a program that
//    writes a random source into each frame and transmits it (XDP_TX) into
//    the veth; jitgate's XDP runs natively on the frames, as on a NIC with
//    XDP support; nftables sees them as the skbs the stack builds (GRO on the
//    veth, no XDP program at all).
//  - skbs: AF_PACKET sendmmsg (qdisc bypassed), XDP in generic mode: the
//    path on a device without native XDP.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "../bpf/packet.h"
#include "bench.h"
#include "env.h"
#include "raw_progs.h"

namespace jgbench {

namespace {

constexpr const char* kTable = "jgbench_flood";

enum Gen : std::uint32_t { kFrames = 0, kSkbs = 1 };
struct GenCmd {
    std::uint32_t ms = 0;  // 0: stop
    std::uint32_t gen = kFrames;
};

// Offsets in an Ethernet + IPv6 frame of the source's words the live-frames
// generator randomises: 2001:db8:XXXX:XXXX::YYYY:YYYY, a new /64 each time.
constexpr std::uint32_t kSrcOff = 14 + 8;

// Sends for `ms` through the live-frames generator; returns frames sent.
std::uint64_t send_frames(int prog, int ifindex, std::vector<std::uint8_t>& frame, std::uint32_t ms) {
    xdp_md ctx{};
    ctx.ingress_ifindex = std::uint32_t(ifindex);
    ctx.data_end = std::uint32_t(frame.size());  // the kernel wants the frame's length here
    std::uint64_t sent = 0;
    const std::uint64_t end = now_ns() + std::uint64_t(ms) * 1000000;
    while (now_ns() < end) {
        constexpr int kChunk = 16384;
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                    .data_size_in = std::uint32_t(frame.size()), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
                    .repeat = kChunk, .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
        if (bpf_prog_test_run_opts(prog, &opts) != 0) break;
        sent += kChunk;
    }
    return sent;
}

// The generator: runs in the child, in its own network namespace, sending
// for the number of milliseconds it reads from `cmd` with the generator
// named there, answering the count sent on `res` (~0 when it cannot); stops
// at 0 or EOF.
[[noreturn]] void generator(int cmd, int res, const Env& env) {
    std::vector<std::vector<std::uint8_t>> frames;
    std::mt19937 rng(12345);
    for (int i = 0; i < 4096; ++i) {
        char src[64];
        std::snprintf(src, sizeof(src), "2001:db8:%x:%x::%x", unsigned(rng() & 0xffff),
                      unsigned(rng() & 0xffff), unsigned(rng() % 0xfffe + 2));
        frames.push_back(jgtest::Packet()
                             .eth(jgtest::wire::kIPv6)
                             .ipv6(src, kLocal6, jgtest::wire::kTcp)
                             .tcp(std::uint16_t(1024 + rng() % 60000), env.port)
                             .finish());
    }
    GenCmd c;
    if (read(cmd, &c, sizeof(c)) != sizeof(c)) _exit(1);
    const int ifindex = int(if_nametoindex("jgbench1"));
    const int spoofer = load_xdp_spoofer(kSrcOff + 4, kSrcOff + 12);
    std::vector<std::uint8_t> live = frames[0];
    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    const int one = 1;
    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
    sockaddr_ll ll{};
    ll.sll_family = AF_PACKET;
    ll.sll_ifindex = ifindex;
    ll.sll_halen = 6;
    constexpr int kBatch = 256;
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    while (c.ms != 0) {
        std::uint64_t sent = 0;
        if (c.gen == kFrames) {
            sent = spoofer >= 0 ? send_frames(spoofer, ifindex, live, c.ms) : ~0ULL;
        } else {
            std::size_t next = 0;
            const std::uint64_t end = now_ns() + std::uint64_t(c.ms) * 1000000;
            while (now_ns() < end) {
                for (int i = 0; i < kBatch; ++i) {
                    auto& f = frames[next++ % frames.size()];
                    iov[i] = {f.data(), f.size()};
                    msgs[i] = {};
                    msgs[i].msg_hdr.msg_iov = &iov[i];
                    msgs[i].msg_hdr.msg_iovlen = 1;
                    msgs[i].msg_hdr.msg_name = &ll;
                    msgs[i].msg_hdr.msg_namelen = sizeof(ll);
                }
                const int n = sendmmsg(fd, msgs, kBatch, 0);
                if (n > 0) sent += std::uint64_t(n);
            }
        }
        if (write(res, &sent, sizeof(sent)) != sizeof(sent)) _exit(1);
        if (read(cmd, &c, sizeof(c)) != sizeof(c)) break;
    }
    _exit(0);
}

// GRO on the receiving veth: it then takes XDP frames from its peer with no
// XDP program attached (the nftables variant), as a NIC would hand packets
// to the stack.
bool set_gro(const char* ifname, bool on) {
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ethtool_value v{};
    v.cmd = ETHTOOL_SGRO;
    v.data = on ? 1 : 0;
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    ifr.ifr_data = reinterpret_cast<char*>(&v);
    const bool ok = ioctl(fd, SIOCETHTOOL, &ifr) == 0;
    close(fd);
    return ok;
}

std::string nft_file(const Env& env, std::uint32_t n, bool chain) {
    char path[] = "/tmp/jitgate-bench-flood-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return {};
    FILE* f = fdopen(fd, "w");
    if (chain) {
        std::fprintf(
            f,
            "table netdev %s {\n  chain in {\n    type filter hook ingress device jgbench0 priority 0; "
            "policy accept;\n    ip6 daddr %s tcp dport %u ip6 saddr . tcp dport != @grants counter drop\n"
            "  }\n}\n",
            kTable, kLocal6, env.port);
    } else {
        std::fprintf(f, "table netdev %s {\n", kTable);
        write_nft_grant_set(f, env, n);
        std::fprintf(f, "}\n");
    }
    std::fclose(f);
    return path;
}

std::uint64_t nft_drops() {
    std::string out;
    if (run({"nft", "-j", "list", "chain", "netdev", kTable, "in"}, &out) != 0) return 0;
    const auto j = json::parse(out, nullptr, false);
    if (j.is_discarded()) return 0;
    for (const auto& item : j.value("nftables", json::array()))
        if (item.contains("rule"))
            for (const auto& e : item["rule"].value("expr", json::array()))
                if (e.contains("counter")) return e["counter"].value("packets", 0ULL);
    return 0;
}

std::uint64_t xdp_drops(const Env& env) {
    const int n = libbpf_num_possible_cpus();
    std::vector<std::uint64_t> v(std::size_t(n > 0 ? n : 1));
    std::uint32_t idx = JG_CNT_XDP_DROP;
    if (bpf_map_lookup_elem(bpf_map__fd(env.skel->maps.jg_counters), &idx, v.data()) != 0) return 0;
    std::uint64_t sum = 0;
    for (auto x : v) sum += x;
    return sum;
}

}  // namespace

void bench_flood(const Settings& s, Env& env, std::vector<Row>& rows) {
    Row rows_of[2] = {
        {4, "flood_pps", "deny flood: packets dropped per second by jitgate XDP (native, live frames)"},
        {4, "flood_pps_skb", "deny flood, skb path: jitgate XDP in generic mode (AF_PACKET generator)"}};
    for (auto& r : rows_of) {
        r.unit = "pps";
        r.reference = "nftables netdev ingress, same grants in a set";
    }
    rows_of[kFrames].goal = ">= 1.5x nftables (stretch 2.5x)";
    int cmd[2], res[2];
    if (pipe(cmd) != 0 || pipe(res) != 0) {
        for (auto& r : rows_of) {
            r.note = "not measured: no pipes";
            rows.push_back(r);
        }
        return;
    }
    const pid_t child = fork();
    if (child == 0) {
        close(cmd[1]);
        close(res[0]);
        if (unshare(CLONE_NEWNET) != 0) _exit(1);
        std::uint32_t go = 0;
        if (write(res[1], &go, sizeof(go)) != sizeof(go)) _exit(1);  // "in my namespace now"
        if (read(cmd[0], &go, sizeof(go)) != sizeof(go)) _exit(1);   // "the veth end is here"
        if (run({"ip", "link", "set", "jgbench1", "up"}) != 0) _exit(1);
        generator(cmd[0], res[1], env);
    }
    close(cmd[0]);
    close(res[1]);
    std::string why;
    std::uint32_t ack = 0;
    if (child < 0 || read(res[0], &ack, sizeof(ack)) != sizeof(ack))
        why = "cannot start the generator";
    else if (run({"ip", "link", "set", "jgbench1", "netns", std::to_string(child)}) != 0)
        why = "cannot move the veth peer into the generator's namespace";
    else if (write(cmd[1], &ack, sizeof(ack)) != sizeof(ack))
        why = "the generator is gone";
    else if (!set_gro("jgbench0", true))
        why = std::string("cannot turn GRO on for the veth: ") + std::strerror(errno);
    usleep(200000);

    // As in figure 3: fewer elements in the set than grants in the map (a
    // set lookup is a hash lookup; a million elements take most of a minute to load).
    const std::uint32_t nset = std::min<std::uint32_t>(s.quick ? 20000 : 100000, env.grants);
    const std::string set_file = nft_file(env, nset, false), chain_file = nft_file(env, nset, true);
    if (why.empty()) {
        progress("figure 4: nftables set of %u grants", nset);
        if (set_file.empty() || run({"nft", "-f", set_file}) != 0) why = "nft could not load the grant set";
    }
    const std::uint32_t ms = s.quick ? 1000 : 2000, rounds = s.quick ? 2 : 5;
    std::vector<double> pps[2][2], sent_pps[2][2];
    for (std::uint32_t r = 0; r < rounds && why.empty(); ++r) {
        progress("figure 4: round %u/%u (%u ms per variant and generator)", r + 1, rounds, ms);
        for (std::uint32_t gen : {kFrames, kSkbs}) {
            // Native on the frames the live generator transmits into the
            // veth; generic (skb) mode for AF_PACKET's skbs, which native
            // XDP on a veth would first copy into an xdp_buff.
            const std::uint32_t xdp_mode = gen == kFrames ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
            for (int v : {0, 1}) {
                bool attached = false;
                std::uint64_t before = 0;
                if (v == 0) {
                    if (bpf_xdp_attach(env.dummy_ifindex, bpf_program__fd(env.skel->progs.jg_xdp), xdp_mode,
                                       nullptr) != 0) {
                        why = std::string("cannot attach XDP to the veth: ") + std::strerror(errno);
                        break;
                    }
                    attached = true;
                    before = xdp_drops(env);
                } else if (run({"nft", "-f", chain_file}) != 0) {
                    why = "nft could not add the ingress chain";
                    break;
                }
                std::uint64_t sent = 0;
                const GenCmd c{ms, gen};
                if (write(cmd[1], &c, sizeof(c)) != sizeof(c) ||
                    read(res[0], &sent, sizeof(sent)) != sizeof(sent))
                    why = "the generator failed";
                else if (sent == ~0ULL)
                    why = "the generator could not load its live-frames program";
                const std::uint64_t dropped = v == 0 ? xdp_drops(env) - before : nft_drops();
                if (attached) bpf_xdp_detach(env.dummy_ifindex, xdp_mode, nullptr);
                if (v == 1) run({"nft", "delete", "chain", "netdev", kTable, "in"});
                if (!why.empty()) break;
                pps[gen][v].push_back(double(dropped) * 1000.0 / ms);
                sent_pps[gen][v].push_back(double(sent) * 1000.0 / ms);
            }
            if (!why.empty()) break;
        }
    }
    const GenCmd stop{};
    if (write(cmd[1], &stop, sizeof(stop)) < 0) {
    }
    close(cmd[1]);
    close(res[0]);
    if (child > 0) {
        kill(child, SIGTERM);
        waitpid(child, nullptr, 0);
    }
    set_gro("jgbench0", false);
    run({"nft", "delete", "table", "netdev", kTable});
    if (!set_file.empty()) unlink(set_file.c_str());
    if (!chain_file.empty()) unlink(chain_file.c_str());
    for (std::uint32_t gen : {kFrames, kSkbs}) {
        Row& row = rows_of[gen];
        if (!why.empty() || pps[gen][0].empty() || pps[gen][1].empty()) {
            row.note = "not measured: " + (why.empty() ? std::string("no round completed") : why);
            rows.push_back(row);
            continue;
        }
        std::vector<double> ratio;
        for (std::size_t i = 0; i < pps[gen][0].size(); ++i)
            ratio.push_back(pps[gen][1][i] > 0 ? pps[gen][0][i] / pps[gen][1][i] : 0);
        row.value = median(pps[gen][0]);
        row.reference_value = median(pps[gen][1]);
        const double q = median(ratio);
        row.comparison = num(q, 2) + "x nftables";
        if (gen == kFrames) row.met = q >= 1.5;
        row.note = std::to_string(pps[gen][0].size()) + " interleaved rounds of " + std::to_string(ms) +
                   " ms; generator sent " + num(median(sent_pps[gen][0]) / 1e6, 2) + " / " +
                   num(median(sent_pps[gen][1]) / 1e6, 2) + " Mpps (jitgate / nftables); ";
        row.note +=
            gen == kFrames
                ? "a new random /64 source per frame (BPF_PROG_RUN live frames, XDP_TX into the veth); "
                  "the veth's receive runs on the generator's CPU, so the figure is the cost of "
                  "generate + drop per packet; XDP native, nftables on GRO-built skbs; "
                : "4096 random sources in turn (AF_PACKET sendmmsg); sender and receiver share a CPU "
                  "(veth delivers there); XDP in generic mode; ";
        row.note +=
            std::to_string(env.grants) + " grants in the map, " + std::to_string(nset) + " in the set";
        rows.push_back(row);
    }
}

}  // namespace jgbench
