// Figure 6: loading grants into a map (batched updates) next to `nft -f`
// adding the same elements to a set with timeouts; figure 8 (kernel side):
// what a grant costs the kernel, from the maps' memlock.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "bench.h"
#include "env.h"

namespace jgbench {

namespace {

constexpr const char* kNftTable = "jgbench_load";

// A file for nft -f: a table holding the grant set (write_nft_grant_set).
std::string write_nft_file(const Env& env, std::uint32_t n) {
    char path[] = "/tmp/jitgate-bench-nft-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return {};
    FILE* f = fdopen(fd, "w");
    std::fprintf(f, "table inet %s {\n", kNftTable);
    write_nft_grant_set(f, env, n);
    std::fprintf(f, "}\n");
    std::fclose(f);
    return path;
}

// A map made exactly like the skeleton's jg_grants_addr (type, sizes,
// flags), sized for `n` grants.
int make_grant_map(const Env& env, std::uint32_t n) {
    bpf_map* m = env.skel->maps.jg_grants_addr;
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = bpf_map__map_flags(m));
    return bpf_map_create(bpf_map__type(m), "jg_grants_addr", bpf_map__key_size(m), bpf_map__value_size(m), n,
                          &opts);
}

}  // namespace

void bench_grant_load(const Settings& s, Env& env, std::vector<Row>& rows) {
    const std::uint32_t n = s.quick ? std::min<std::uint32_t>(50000, env.grants) : env.grants;
    const std::uint32_t rounds = s.quick ? 1 : 2;
    Row load{6, "grant_load", "load " + std::to_string(n) + " grants (batched map updates)"};
    load.unit = "s";
    load.reference = "nft -f adding the same elements to a set with timeouts";

    std::vector<double> bpf_s, nft_s;
    std::string why;
    const std::string file = write_nft_file(env, n);
    if (file.empty()) why = "cannot write the nft input file";
    if (why.empty() && run({"nft", "--version"}) != 0)
        why = "nft is not installed (scripts/setup.sh installs nftables)";
    for (std::uint32_t r = 0; r < rounds && why.empty(); ++r) {
        progress("figure 6: round %u/%u: %u grants into a map, then nft -f", r + 1, rounds, n);
        int fd = make_grant_map(env, n);
        if (fd < 0) {
            why = std::string("cannot create a grant map: ") + std::strerror(errno);
            break;
        }
        const std::uint64_t t0 = now_ns();
        const int e = update_batch(fd, env.addr_keys.data(), env.vals.data(), n, sizeof(jg_addr_key),
                                   sizeof(jg_grant_val));
        const std::uint64_t t1 = now_ns();
        close(fd);
        if (e) {
            why = std::string("batched update failed: ") + std::strerror(-e);
            break;
        }
        bpf_s.push_back(double(t1 - t0) / 1e9);

        const std::uint64_t t2 = now_ns();
        const int rc = run({"nft", "-f", file});
        const std::uint64_t t3 = now_ns();
        run({"nft", "delete", "table", "inet", kNftTable});
        if (rc != 0) {
            why = "nft -f failed (exit " + std::to_string(rc) + ")";
            break;
        }
        nft_s.push_back(double(t3 - t2) / 1e9);
    }
    if (!file.empty()) unlink(file.c_str());
    if (!why.empty() || bpf_s.empty()) {
        load.note = "not measured: " + why;
        rows.push_back(load);
    } else {
        const double b = median(bpf_s), f = median(nft_s);
        const double per_million = b * 1e6 / double(n);
        load.value = b;
        load.reference_value = f;
        load.comparison = num(f / b, 1) + "x faster";
        load.measures["per_million_s"] = per_million;
        load.measures["vs_nft"] = f / b;
        load.note = "median of " + std::to_string(bpf_s.size()) + " rounds; " + num(per_million, 3) +
                    " s per 1M grants";
        if (n != 1000000) load.note += " (scaled linearly from " + std::to_string(n) + ")";
        rows.push_back(load);
    }

    // Figure 8, kernel side: the skeleton's grant maps holding env.grants
    // each; memlock counts their buckets and their elements.
    struct M {
        const char* id;
        const char* what;
        bpf_map* map;
        std::size_t payload;
    };
    const M maps[] = {
        {"kmem_per_remote_grant", "kernel memory per remote grant (jg_grants_addr)",
         env.skel->maps.jg_grants_addr, sizeof(jg_addr_key) + sizeof(jg_grant_val)},
        {"kmem_per_local_grant", "kernel memory per local grant (jg_grants_uid)",
         env.skel->maps.jg_grants_uid, sizeof(jg_uid_key) + sizeof(jg_grant_val)},
    };
    for (const M& m : maps) {
        Row r{8, m.id, m.what};
        r.unit = "B/grant";
        r.reference = "key + value bytes";
        r.reference_value = double(m.payload);
        auto mem = map_memlock(bpf_map__fd(m.map));
        // The remote grants' bloom filter is theirs too.
        const bool remote = m.map == env.skel->maps.jg_grants_addr;
        const auto bloom = remote && env.bloom.fd() >= 0 ? map_memlock(env.bloom.fd()) : std::nullopt;
        if (mem && bloom) *mem += *bloom;
        if (!mem) {
            r.note = "not measured: the kernel shows no memlock for the map";
        } else {
            r.value = double(*mem) / double(env.grants);
            r.comparison = num(*r.value / double(m.payload), 2) + "x the payload";
            r.measures["grants"] = env.grants;
            r.note = "memlock " + std::to_string(*mem) + " B with " + std::to_string(env.grants) +
                     " grants (hash buckets included" +
                     (bloom ? ", and the bloom filter's " + std::to_string(*bloom) + " B" : std::string()) +
                     "); preallocated: the maps are made " + "for exactly this many";
        }
        rows.push_back(r);
    }
}

}  // namespace jgbench
