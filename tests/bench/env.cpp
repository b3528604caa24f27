// Loading jitgate's skeleton with grant maps sized for the benchmark.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "bench.h"
#include "core/clock.h"
#include "daemon/system.h"
#include "env.h"

namespace jgbench {

Env::~Env() {
    if (skel) jitgate_bpf__destroy(skel);
}

void write_nft_grant_set(std::FILE* f, const Env& env, std::uint32_t n) {
    std::fprintf(f,
                 "  set grants {\n    type ipv6_addr . inet_service\n    flags timeout\n    elements = {\n");
    for (std::uint32_t i = 0; i < n; ++i) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, grant_addr(i).data(), text, sizeof(text));
        std::fprintf(f, "      %s . %u timeout 1h%s\n", text, env.port, i + 1 < n ? "," : "");
    }
    std::fprintf(f, "    }\n  }\n");
}

jg::Addr16 grant_addr(std::uint32_t i) {
    jg::Addr16 a{};
    a[0] = 0x20;
    a[1] = 0x01;
    a[2] = 0x0d;
    a[3] = 0xb8;
    a[4] = std::uint8_t(i >> 24);
    a[5] = std::uint8_t(i >> 16);
    a[6] = std::uint8_t(i >> 8);
    a[7] = std::uint8_t(i);
    a[15] = 1;
    return a;
}

int update_batch(int fd, const void* keys, const void* vals, std::uint32_t n, std::size_t key_size,
                 std::size_t val_size) {
    constexpr std::uint32_t kChunk = 65536;
    const auto* k = static_cast<const std::uint8_t*>(keys);
    const auto* v = static_cast<const std::uint8_t*>(vals);
    for (std::uint32_t off = 0; off < n;) {
        std::uint32_t count = std::min(kChunk, n - off);
        LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
        if (bpf_map_update_batch(fd, k + std::size_t(off) * key_size, v + std::size_t(off) * val_size, &count,
                                 &opts) != 0)
            return -errno;
        off += count;
    }
    return 0;
}

namespace {

bool add_local(jitgate_bpf* skel, const char* text) {
    auto a = jg::parse_addr(text);
    if (!a) return false;
    jg_addr key = jg::make_local_addr(*a);
    std::uint8_t one = 1;
    return bpf_map_update_elem(bpf_map__fd(skel->maps.jg_local_addrs), &key, &one, BPF_ANY) == 0;
}

}  // namespace

std::string load_env(Env& env, std::uint32_t grants) {
    // The private namespace's interfaces: lo, and a veth device holding
    // this "host"'s addresses (cgroup_skb ingress runs need a real device; its peer is the flood's way in).
    if (run({"ip", "link", "set", "lo", "up"}) != 0 ||
        run({"ip", "link", "add", "jgbench0", "type", "veth", "peer", "name", "jgbench1"}) != 0 ||
        run({"ip", "link", "set", "jgbench0", "up"}) != 0 ||
        run({"ip", "addr", "add", std::string(kLocal4) + "/24", "dev", "jgbench0"}) != 0 ||
        run({"ip", "-6", "addr", "add", std::string(kLocal6) + "/64", "dev", "jgbench0", "nodad"}) != 0)
        return "cannot set up the interfaces of the private network namespace (iproute2)";
    env.dummy_ifindex = int(if_nametoindex("jgbench0"));

    std::random_device rd;
    std::mt19937 rng(rd());
    env.port = std::uint16_t(std::uniform_int_distribution<int>(20000, 31000)(rng));
    env.open_port = std::uint16_t(env.port + 1);
    const auto cookie = jg::current_netns_cookie();
    env.netns_cookie = cookie ? *cookie : 0;
    env.grants = grants;

    env.skel = jitgate_bpf__open();
    if (!env.skel) return std::string("cannot open jitgate's BPF object: ") + std::strerror(errno);
    if (bpf_map__set_max_entries(env.skel->maps.jg_grants_uid, grants) ||
        bpf_map__set_max_entries(env.skel->maps.jg_grants_addr, grants))
        return "cannot size the grant maps";
    if (int e = jitgate_bpf__load(env.skel))
        return std::string("the kernel refused jitgate's BPF programs: ") + std::strerror(-e);

    std::uint32_t zero = 0;
    jg_config cfg;
    std::memset(&cfg, 0, sizeof(cfg));
    cfg.host_netns_cookie = env.netns_cookie;
    std::uint32_t pidx = env.port;
    jg_port_val pv;
    std::memset(&pv, 0, sizeof(pv));
    pv.tcp = JG_PF_PROTECTED;
    pv.udp = JG_PF_PROTECTED;
    if (bpf_map_update_elem(bpf_map__fd(env.skel->maps.jg_config), &zero, &cfg, BPF_ANY) ||
        bpf_map_update_elem(bpf_map__fd(env.skel->maps.jg_ports), &pidx, &pv, BPF_ANY) ||
        !add_local(env.skel, kLocal4) || !add_local(env.skel, kLocal6))
        return "cannot fill jitgate's configuration maps";

    // The grants: a million different principals on the protected port, an
    // hour long.  Remote: 2001:db8::/32 hosts, with kPeer4 among them; local:
    // uids, with the bench's granted user and root (the test-run socket's
    // owner) among them.
    const std::uint64_t expires = jg::boottime_ns() + 3600ULL * 1000000000ULL;
    env.addr_keys.resize(grants);
    env.uid_keys.resize(grants);
    env.vals.resize(grants);
    for (std::uint32_t i = 0; i < grants; ++i) {
        env.addr_keys[i] = jg::make_addr_key(grant_addr(i), env.port, jg::Proto::Tcp);
        env.uid_keys[i] = jg::make_uid_key(100000 + i, env.port, jg::Proto::Tcp);
        env.vals[i] = jg::make_grant_val(expires, i + 1);
    }
    env.addr_keys[grants / 2] = jg::make_addr_key(*jg::parse_addr(kPeer4), env.port, jg::Proto::Tcp);
    env.uid_keys[grants / 2] = jg::make_uid_key(kGrantedUid, env.port, jg::Proto::Tcp);
    env.uid_keys[grants / 2 + 1] = jg::make_uid_key(0, env.port, jg::Proto::Tcp);
    env.uid_keys[grants / 2 + 2] = jg::make_uid_key(kGrantedUid, env.port, jg::Proto::Udp);
    return {};
}

std::string fill_grants(Env& env) {
    if (int e = update_batch(bpf_map__fd(env.skel->maps.jg_grants_addr), env.addr_keys.data(),
                             env.vals.data(), env.grants, sizeof(jg_addr_key), sizeof(jg_grant_val)))
        return std::string("cannot load the remote grants: ") + std::strerror(-e);
    if (int e = update_batch(bpf_map__fd(env.skel->maps.jg_grants_uid), env.uid_keys.data(), env.vals.data(),
                             env.grants, sizeof(jg_uid_key), sizeof(jg_grant_val)))
        return std::string("cannot load the local grants: ") + std::strerror(-e);
    env.bloom.attach(bpf_map__fd(env.skel->maps.jg_grants_bloom), env.grants);
    if (auto r = env.bloom.rebuild(env.addr_keys); !r) return r.error();
    return {};
}

}  // namespace jgbench
