// Figure 4: a deny flood.  TCP SYNs to the protected port, from sources
// without a grant, arrive on a veth (flood_gen.h: the generator on one CPU,
// the veth's NAPI on the other).  Three droppers take turns there, in
// interleaved rounds: a trivial XDP_DROP program (the ceiling of the path),
// jitgate's XDP program in native mode, and an nftables netdev ingress
// chain with the same grants in a set (on the skbs the stack builds, GRO on,
// no XDP program; installed throughout, as no frame reaches it while an
// XDP program drops them all: nft commands fetch the whole set, which takes
// minutes at a million elements).  Two floods: a new random source per frame, and one
// source.  Figure: frames dropped per second.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "bench.h"
#include "env.h"
#include "flood_gen.h"
#include "raw_progs.h"

namespace jgbench {

namespace {

constexpr const char* kTable = "jgbench_flood";
enum Dropper { kCeiling = 0, kJitgate = 1, kNft = 2 };
constexpr Sources kSources[] = {Sources::Random, Sources::Single};
// A dropper that took this much of what was offered was not saturated:
// the generator, not the dropper, set its figure.
constexpr double kTookAll = 0.9;

std::string nft_file(const std::string& ifname, const Env& env, std::uint32_t n, bool chain) {
    char path[] = "/tmp/jitgate-bench-flood-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return {};
    FILE* f = fdopen(fd, "w");
    if (chain) {
        std::fprintf(f,
                     "table netdev %s {\n  chain in {\n    type filter hook ingress device %s priority 0; "
                     "policy accept;\n    ip6 daddr %s tcp dport %u ip6 saddr . tcp dport != @grants counter "
                     "drop\n  }\n}\n",
                     kTable, ifname.c_str(), kLocal6, env.port);
    } else {
        std::fprintf(f, "table netdev %s {\n", kTable);
        write_nft_grant_set(f, env, n);
        std::fprintf(f, "}\n");
    }
    std::fclose(f);
    return path;
}

// Ip6InReceives of this network namespace: IPv6 packets that got past the
// netdev ingress hook.
std::optional<std::uint64_t> ip6_in_receives() {
    std::ifstream f("/proc/net/snmp6");
    std::string key;
    std::uint64_t v = 0;
    while (f >> key >> v)
        if (key == "Ip6InReceives") return v;
    return std::nullopt;
}

// Takes every entry out of a hash map (in batches); false if it could not.
bool empty_hash(bpf_map* m) {
    const int fd = bpf_map__fd(m);
    const bool percpu =
        bpf_map__type(m) == BPF_MAP_TYPE_PERCPU_HASH || bpf_map__type(m) == BPF_MAP_TYPE_LRU_PERCPU_HASH;
    const int cpus = percpu ? libbpf_num_possible_cpus() : 1;
    if (cpus <= 0) return false;
    const std::size_t ksize = bpf_map__key_size(m),
                      vsize = (bpf_map__value_size(m) + 7) / 8 * 8 * std::size_t(cpus);
    constexpr std::uint32_t kChunk = 4096;
    std::vector<std::uint8_t> keys(ksize * kChunk), vals(vsize * kChunk), batch(ksize);
    // Bounded: each call takes at least one entry out, or ends.
    for (std::uint32_t i = 0; i <= bpf_map__max_entries(m); ++i) {
        std::uint32_t count = kChunk;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        const int e = bpf_map_lookup_and_delete_batch(fd, nullptr, batch.data(), keys.data(), vals.data(),
                                                      &count, &opts);
        if (e != 0 && errno != ENOENT) return false;
        if (e != 0 || count == 0) return true;  // ENOENT: that was the last batch
    }
    return true;
}

// Each window starts as after a quiet second: the daemon has drained the
// event ring and closed the rate-limit windows (jg_*_rl), so that one
// window's sources do not fill the table another window is measured on.
// By name, whatever the maps' layout.
bool settle(const Env& env, ring_buffer* ring) {
    if (ring) ring_buffer__consume(ring);
    bpf_map* m = nullptr;
    bool ok = true;
    bpf_object__for_each_map(m, env.skel->obj) {
        const std::string name = bpf_map__name(m);
        const auto type = bpf_map__type(m);
        if (name.size() > 3 && name.compare(name.size() - 3, 3, "_rl") == 0 &&
            (type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_HASH ||
             type == BPF_MAP_TYPE_LRU_PERCPU_HASH))
            ok = empty_hash(m) && ok;
    }
    return ok;
}

// What the rounds measured, per source kind and dropper.
struct Windows {
    std::vector<double> dropped[2][3];  // frames dropped per second
    std::vector<double> offered[2][3];  // frames the generator sent per second
    std::vector<double> cpu_ns[2][3];   // the NAPI kthread's run time per frame dropped
};

// One window: `d` in place on the veth, the generator sending `src` for
// `ms`; appends the rates to w.  Empty, or why it failed.
std::string window(Generator& gen, Receiver& rx, const Env& env, ring_buffer* ring, int drop_prog, int si,
                   int d, std::uint32_t ms, Windows& w) {
    if (!settle(env, ring)) return std::string("cannot empty the rate-limit tables: ") + std::strerror(errno);
    if (d != kNft) {
        const int prog = d == kCeiling ? drop_prog : bpf_program__fd(env.skel->progs.jg_xdp);
        if (bpf_xdp_attach(rx.ifindex(), prog, XDP_FLAGS_DRV_MODE, nullptr) != 0)
            return std::string("cannot attach XDP (native) to the veth: ") + std::strerror(errno);
    }
    std::string why;
    if (!rx.pin_napi()) why = "cannot pin the veth's NAPI kthread";
    // nftables: every frame the queue takes goes to the stack, where the
    // chain drops it (checked below: none reaches IPv6).
    const auto before = d != kNft ? rx.xdp_drops() : rx.frames_taken();
    const auto ip6_before = ip6_in_receives();
    const auto cpu_before = rx.napi_runtime_ns();
    Generated g;
    const bool sent = why.empty() && gen.send(kSources[si], ms, g);
    usleep(10000);  // the frames still in the veth's ring (256 at most)
    const auto after = d != kNft ? rx.xdp_drops() : rx.frames_taken();
    const auto ip6_after = ip6_in_receives();
    const auto cpu_after = rx.napi_runtime_ns();
    if (d != kNft) bpf_xdp_detach(rx.ifindex(), XDP_FLAGS_DRV_MODE, nullptr);
    if (!why.empty()) return why;
    if (!sent) return gen.why();
    if (!before || !after || !ip6_before || !ip6_after) return "cannot read the veth's or IPv6's counters";
    if ((*ip6_after - *ip6_before) * 100 > *after - *before)
        return "frames of the flood got past the dropper to IPv6 (" +
               std::to_string(*ip6_after - *ip6_before) + "): the figure would not count drops";
    w.dropped[si][d].push_back(double(*after - *before) * 1e9 / double(g.elapsed_ns));
    w.offered[si][d].push_back(g.pps());
    if (cpu_before && cpu_after && *after > *before)
        w.cpu_ns[si][d].push_back(double(*cpu_after - *cpu_before) / double(*after - *before));
    return {};
}

// Per round, a over b; their median.
double paired_ratio(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> q;
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) q.push_back(b[i] > 0 ? a[i] / b[i] : 0);
    return median(q);
}

int ignore_event(void*, void*, std::size_t) { return 0; }

std::string mpps(double pps) { return num(pps / 1e6, 2) + " Mpps"; }

// The rows of figure 4 from the rounds' windows.
void report_flood(const Windows& w, const std::string& how, std::vector<Row>& rows) {
    static const char* kSrcText[] = {"random sources (a new /64 of 2001:db8::/32 per frame)",
                                     "a single source"};
    static const char* kSrcId[] = {"random", "single"};
    double took[2][3], drop[2][3], offer[2][3];
    for (int si = 0; si < 2; ++si)
        for (int d = 0; d < 3; ++d) {
            took[si][d] = paired_ratio(w.dropped[si][d], w.offered[si][d]);
            drop[si][d] = median(w.dropped[si][d]);
            offer[si][d] = median(w.offered[si][d]);
        }
    // The generator against the fastest dropper.
    int fs = 0, fd = 0;
    for (int si = 0; si < 2; ++si)
        for (int d = 0; d < 3; ++d)
            if (drop[si][d] > drop[fs][fd]) fs = si, fd = d;
    static const char* kDropText[] = {"trivial XDP_DROP", "jitgate XDP", "nftables"};
    Row g{4, "flood_gen", "deny flood generator: frames offered per second (one CPU)"};
    g.unit = "pps";
    g.value = offer[fs][fd];
    g.reference = std::string("the fastest dropper (") + kDropText[fd] + ", " + kSrcId[fs] + " source)";
    g.reference_value = drop[fs][fd];
    g.measures["vs_fastest"] = paired_ratio(w.offered[fs][fd], w.dropped[fs][fd]);
    g.comparison = num(g.measures["vs_fastest"], 2) + "x the fastest dropper";
    g.note = how;
    rows.push_back(g);
    for (int si = 0; si < 2; ++si) {
        const bool ceil_sat = took[si][kCeiling] < kTookAll, nft_sat = took[si][kNft] < kTookAll;
        const double vs_ceil = paired_ratio(w.dropped[si][kJitgate], w.dropped[si][kCeiling]);
        const double vs_nft = paired_ratio(w.dropped[si][kJitgate], w.dropped[si][kNft]);
        const double nft_ceil = paired_ratio(w.dropped[si][kNft], w.dropped[si][kCeiling]);
        auto took_text = [&](int d) {
            return std::string(kDropText[d]) + " took " + num(took[si][d] * 100, 0) + " % of the " +
                   mpps(offer[si][d]) + " offered";
        };
        Row c{4, std::string("flood_ceiling_") + kSrcId[si],
              std::string("deny flood, ") + kSrcText[si] + ": trivial XDP_DROP (the ceiling)"};
        Row x{4, std::string("flood_xdp_") + kSrcId[si],
              std::string("deny flood, ") + kSrcText[si] + ": jitgate XDP (native)"};
        Row n{4, std::string("flood_nft_") + kSrcId[si],
              std::string("deny flood, ") + kSrcText[si] + ": nftables netdev ingress"};
        for (Row* r : {&c, &x, &n}) {
            r->unit = "pps";
            r->note = "set-up as in the generator's row";
            r->measures["ceiling_saturated"] = ceil_sat;
            r->measures["nft_saturated"] = nft_sat;
        }
        c.value = drop[si][kCeiling];
        c.reference = "frames offered";
        c.reference_value = offer[si][kCeiling];
        c.comparison = num(took[si][kCeiling] * 100, 0) + " % of the offered";
        x.value = drop[si][kJitgate];
        x.reference = si == 0 ? "nftables" : "the ceiling";
        x.reference_value = drop[si][si == 0 ? kNft : kCeiling];
        x.measures["vs_nft"] = vs_nft;
        x.measures["vs_ceiling"] = vs_ceil;
        x.measures["saturated"] = took[si][kJitgate] < kTookAll;
        n.value = drop[si][kNft];
        n.reference = "the ceiling";
        n.reference_value = drop[si][kCeiling];
        n.measures["vs_ceiling"] = nft_ceil;
        if (!nft_sat) {
            // The generator could not outrun the slowest dropper: no ratio.
            x.comparison = n.comparison = "no ratio: the generator is the bottleneck";
            x.note = n.note = took_text(kNft) + " (and " + took_text(kJitgate) +
                              "): the machine cannot generate more than the slowest dropper takes, so these "
                              "figures are the generator's";
        } else {
            const bool lower = took[si][kJitgate] >= kTookAll;
            x.comparison = (lower ? ">= " : "") + num(vs_nft, 2) + "x nftables, " + (ceil_sat ? "" : "~") +
                           num(vs_ceil, 2) + "x the ceiling";
            n.comparison = (ceil_sat ? "" : "~") + num(nft_ceil, 2) + "x the ceiling";
            x.note = took_text(kJitgate) + ", " + took_text(kNft);
            if (!ceil_sat)
                x.note = "the ceiling took all it was offered, so ratios to it are upper bounds; " + x.note;
        }
        const double cpu[3] = {median(w.cpu_ns[si][kCeiling]), median(w.cpu_ns[si][kJitgate]),
                               median(w.cpu_ns[si][kNft])};
        c.measures["rx_cpu_ns"] = cpu[kCeiling];
        x.measures["rx_cpu_ns"] = cpu[kJitgate];
        n.measures["rx_cpu_ns"] = cpu[kNft];
        x.note =
            "receiving CPU time per dropped frame (the NAPI kthread's run time, whatever share of the CPU "
            "it got): " +
            num(cpu[kJitgate], 0) + " ns for jitgate, " + num(cpu[kNft], 0) + " ns for nftables, " +
            num(cpu[kCeiling], 0) + " ns for the trivial drop; " + x.note;
        for (Row* r : {&c, &x, &n}) rows.push_back(*r);
    }
}

}  // namespace

void bench_flood(const Settings& s, Env& env, std::vector<Row>& rows) {
    const std::uint32_t ms = s.quick ? 400 : 1000, rounds = s.quick ? 2 : 5;
    // The same grants in the set as in the maps; a --quick run fewer (a
    // million elements take nft some ten seconds to load).
    const std::uint32_t nset = s.quick ? std::min<std::uint32_t>(20000, env.grants) : env.grants;
    const int gen_cpu = 0, rx_cpu = 1;
    const std::string ifname = "jgf" + std::to_string(getpid()), peer = "jgg" + std::to_string(getpid());
    std::string why;
    Receiver rx;
    Generator gen;
    std::string set_file, chain_file;
    const int drop_prog = load_xdp_drop();
    if (libbpf_num_possible_cpus() < 2 || sysconf(_SC_NPROCESSORS_ONLN) < 2)
        why = "the flood needs two CPUs (the generator on one, the receiving veth on the other)";
    if (why.empty()) why = rx.make(ifname, peer, rx_cpu);
    if (why.empty()) why = gen.start(peer, env.port, gen_cpu);
    if (why.empty() && drop_prog < 0) why = "cannot load the trivial XDP_DROP program";
    if (why.empty()) {
        progress("figure 4: nftables set of %u grants", nset);
        set_file = nft_file(ifname, env, nset, false);
        chain_file = nft_file(ifname, env, nset, true);
        if (set_file.empty() || chain_file.empty() || run({"nft", "-f", set_file}) != 0)
            why = "nft could not load the grant set";
        else if (run({"nft", "-f", chain_file}) != 0)
            why = "nft could not add the ingress chain";
    }
    Windows w;
    bpf_map* events = bpf_object__find_map_by_name(env.skel->obj, "jg_events");
    ring_buffer* ring = events && bpf_map__type(events) == BPF_MAP_TYPE_RINGBUF
                            ? ring_buffer__new(bpf_map__fd(events), ignore_event, nullptr, nullptr)
                            : nullptr;
    for (std::uint32_t r = 0; r < rounds && why.empty(); ++r) {
        progress("figure 4: round %u/%u (%u ms per source kind and dropper)", r + 1, rounds, ms);
        for (int si = 0; si < 2 && why.empty(); ++si)
            for (int d : {kCeiling, kJitgate, kNft})
                if (why = window(gen, rx, env, ring, drop_prog, si, d, ms, w); !why.empty()) break;
    }
    gen.stop();
    if (ring) ring_buffer__free(ring);
    run({"nft", "delete", "table", "netdev", kTable});
    if (drop_prog >= 0) close(drop_prog);
    if (!set_file.empty()) unlink(set_file.c_str());
    if (!chain_file.empty()) unlink(chain_file.c_str());
    if (!why.empty()) {
        for (const char* id : {"flood_gen", "flood_ceiling_random", "flood_xdp_random", "flood_nft_random",
                               "flood_ceiling_single", "flood_xdp_single", "flood_nft_single"}) {
            Row row{4, id, std::string("deny flood: ") + id};
            row.unit = "pps";
            row.note = "not measured: " + why;
            rows.push_back(row);
        }
        return;
    }
    const std::string how =
        std::to_string(rounds) + " interleaved rounds of " + std::to_string(ms) +
        " ms per source kind and dropper; generator (BPF_PROG_RUN live frames, batches of "
        "256, XDP_TX into a veth) on CPU " +
        std::to_string(gen_cpu) + ", the veth's threaded NAPI on CPU " + std::to_string(rx_cpu) + "; " +
        std::to_string(env.grants) + " grants in the maps, " + std::to_string(nset) + " in the nftables set";
    report_flood(w, how, rows);
}

}  // namespace jgbench
