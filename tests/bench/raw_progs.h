#pragma once
// Reference programs written as raw instructions, loaded next to jitgate's:
// nothing of them can be cheaper, so they are the floor each figure is
// measured against.
#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cstdint>
#include <vector>

namespace jgbench {

// An XDP program returning XDP_PASS.
int load_empty_xdp();
// A cgroup_skb program returning 1 (let the packet go).
int load_empty_skb();
// The same two plus one bpf_ktime_get_boot_ns() call: the expiry check's clock alone.
int load_clock_xdp();
int load_clock_skb();
// A tc program that writes one jg_event-sized record (zeroed, then the
// verdict and the hook set) into the ring buffer `ring_fd` and submits it
// with the flags jitgate's programs give a denial (their wake-up policy;
// `wake_fd`: an array of one u64, as jg_wake), per run: the producer side
// of figure 7.  TC_ACT_OK on success, TC_ACT_SHOT when the ring was full.
int load_ring_producer(int ring_fd, int wake_fd, std::uint32_t record_bytes);
// An XDP program that writes random bytes over 4-byte words at `off_a` and
// `off_b` of the frame (a flood's spoofed source) and returns XDP_TX: run
// in BPF_F_TEST_XDP_LIVE_FRAMES mode it is a packet generator.
int load_xdp_spoofer(std::uint32_t off_a, std::uint32_t off_b);
// An XDP program returning XDP_TX: the generator of a single-source flood.
int load_xdp_tx();
// An XDP program returning XDP_DROP: the cheapest dropper there is, the
// ceiling of a flood's receive path.
int load_xdp_drop();

}  // namespace jgbench
