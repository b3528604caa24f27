#pragma once
// Private to userspace/bpf: the embedded BPF object (jitgate.skel.h) as one
// RAII owner, opened with every map pinned under the pin directory by its
// own name, and typed views of the maps the daemon's verbs write.
#include <cstdint>
#include <memory>
#include <string>

#include "bpf/map.h"
#include "core/result.h"
#include "jitgate.skel.h"
#include "jitgate/abi.h"

namespace jg {

struct SkeletonFree {
    void operator()(jitgate_bpf* s) const { jitgate_bpf__destroy(s); }
};
using Skeleton = std::unique_ptr<jitgate_bpf, SkeletonFree>;

// Whether a map is pinned: every map the programs declare (.maps), not the
// object's own .bss/.rodata (libbpf's internal maps).
bool pinned_map(const bpf_map* m);
// <pin_dir>/<map name>: the names existing installs have.
std::string map_pin(const std::string& pin_dir, const bpf_map* m);

// Opens and loads the object: maps pinned by name under pin_dir (an earlier
// run's pinned maps reused), the ring sized, the grant maps sized to
// max_grants unless pinned (bpf/grant_size.h), and the connection cutter left
// out when the kernel lacks bpf_sock_destroy (*cut_note says so).
Result<Skeleton> load_skeleton(const std::string& pin_dir, std::uint32_t ring_bytes, std::string* cut_note,
                               std::uint32_t max_grants);

struct KernelMaps {
    Map<std::uint32_t, jg_port_val> ports;
    Map<jg_uid_key, jg_grant_val> grants_uid;
    Map<jg_addr_key, jg_grant_val> grants_addr;
    Map<jg_net_key, jg_grant_val> grants_net;
    Map<jg_rl_key, jg_rl_val> deny_rl;
    Map<jg_allow_key, jg_rl_val> allow_rl;
    Map<jg_addr, std::uint8_t> local_addrs;
    Map<jg_local_net_key, std::uint8_t> local_nets;
    Map<std::uint32_t, jg_config> config;
    Map<std::uint32_t, jg_bind_val> bind_ports;
    Map<jg_bind_key, std::uint8_t> bind_users;
    int counters_fd = -1;  // per-CPU: read whole, not through a view
    int memo_fd = -1;      // jg_deny_memo, mapped by DenyMemo
    int bloom_fd = -1;     // jg_grants_bloom: its slot holds a map, see GrantBloom
    int events_fd = -1;    // the ring, for EventRing
    // How many grants each grant map holds (max_entries): what "the grant
    // map is full" names, and what a bloom filter is made for.
    std::uint32_t grant_capacity = 0;
    // The views of a loaded skeleton; an error when a layout differs.
    static Result<KernelMaps> of(jitgate_bpf* s);
};

}  // namespace jg
