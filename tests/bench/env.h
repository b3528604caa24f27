#pragma once
// The kernel side the figures share: jitgate's own skeleton, loaded (never
// pinned) in this process's private network namespace with its grant maps
// sized for the benchmark's grants and filled with them, plus the addresses
// and ports the frames and sockets use.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bpf/grant_bloom.h"
#include "core/keys.h"
#include "jitgate.skel.h"

namespace jgbench {

// Documentation addresses only (never 192.0.2.0/24).
inline constexpr const char* kLocal4 = "203.0.113.1";      // this "host"
inline constexpr const char* kPeer4 = "203.0.113.2";       // a peer with a grant
inline constexpr const char* kStranger4 = "198.51.100.7";  // a peer without one
inline constexpr const char* kLocal6 = "2001:db8:1::1";
inline constexpr std::uint32_t kGrantedUid = 65534;  // nobody: the granted local user

struct Env {
    jitgate_bpf* skel = nullptr;
    std::uint16_t port = 0;       // protected, tcp and udp; random high port
    std::uint16_t open_port = 0;  // not protected
    std::uint64_t netns_cookie = 0;
    int dummy_ifindex = 0;  // jgbench0 (a veth), for cgroup_skb ingress runs
    std::uint32_t grants = 0;
    // The grants in the maps: remote keys (2001:db8::/32 hosts and kPeer4),
    // local keys (uids, kGrantedUid and 0 among them).
    std::vector<jg_addr_key> addr_keys;
    std::vector<jg_uid_key> uid_keys;
    std::vector<jg_grant_val> vals;
    // The bloom filter in front of jg_grants_addr, built of addr_keys as
    // the daemon builds it.
    jg::GrantBloom bloom;
    ~Env();
};

// Opens and loads the skeleton with grant maps of `grants` entries, sets its
// configuration for this network namespace and protects env.port. Empty, or
// why it could not.
std::string load_env(Env& env, std::uint32_t grants);

// Writes all env grants into the skeleton's two grant maps (batched) and
// builds the bloom filter of the remote ones.
std::string fill_grants(Env& env);

// The i-th remote grant's address: 2001:db8:<i>::1 spread over the /32.
jg::Addr16 grant_addr(std::uint32_t i);

// Writes `set grants { ... }` to f: the nftables equivalent of the first n
// remote grants, (address, port) with a timeout per element, as a firewall
// would hold them.
void write_nft_grant_set(std::FILE* f, const Env& env, std::uint32_t n);

// bpf_map_update_batch in chunks; 0 or -errno.
int update_batch(int fd, const void* keys, const void* vals, std::uint32_t n, std::size_t key_size,
                 std::size_t val_size);

}  // namespace jgbench
