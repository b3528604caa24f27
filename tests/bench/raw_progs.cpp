#include "raw_progs.h"

#include <linux/if_link.h>

#include <algorithm>
#include <cstddef>

#include "jitgate/abi.h"

namespace jgbench {

namespace {

bpf_insn insn(std::uint8_t code, std::uint8_t dst, std::uint8_t src, std::int16_t off, std::int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}
bpf_insn mov_imm(std::uint8_t dst, std::int32_t imm) {
    return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
bpf_insn mov_reg(std::uint8_t dst, std::uint8_t src) {
    return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}
bpf_insn call(std::int32_t helper) { return insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
bpf_insn exit_() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

int load(bpf_prog_type type, const char* name, const std::vector<bpf_insn>& prog,
         bpf_attach_type expected = bpf_attach_type(0)) {
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = expected);
    return bpf_prog_load(type, name, "GPL", prog.data(), prog.size(), &opts);
}

}  // namespace

int load_empty_xdp() {
    return load(BPF_PROG_TYPE_XDP, "jg_empty_xdp", {mov_imm(BPF_REG_0, XDP_PASS), exit_()});
}

int load_xdp_tx() { return load(BPF_PROG_TYPE_XDP, "jg_xdp_tx", {mov_imm(BPF_REG_0, XDP_TX), exit_()}); }

int load_xdp_drop() {
    return load(BPF_PROG_TYPE_XDP, "jg_xdp_drop", {mov_imm(BPF_REG_0, XDP_DROP), exit_()});
}

int load_empty_skb() {
    return load(BPF_PROG_TYPE_CGROUP_SKB, "jg_empty_skb", {mov_imm(BPF_REG_0, 1), exit_()},
                BPF_CGROUP_INET_INGRESS);
}

// The same empty programs plus one CLOCK_BOOTTIME read: what the expiry
// check alone costs (design §1: every packet of a granted flow reads it).
int load_clock_xdp() {
    return load(BPF_PROG_TYPE_XDP, "jg_clock_xdp",
                {call(BPF_FUNC_ktime_get_boot_ns), mov_imm(BPF_REG_0, XDP_PASS), exit_()});
}

int load_clock_skb() {
    return load(BPF_PROG_TYPE_CGROUP_SKB, "jg_clock_skb",
                {call(BPF_FUNC_ktime_get_boot_ns), mov_imm(BPF_REG_0, 1), exit_()}, BPF_CGROUP_INET_INGRESS);
}

int load_ring_producer(int ring_fd, int wake_fd, std::uint32_t record_bytes) {
    std::vector<bpf_insn> p;
    auto ld_map = [&](std::uint8_t reg, int fd) {  // ld_imm64 with a map fd: two instructions
        p.push_back(insn(BPF_LD | BPF_DW | BPF_IMM, reg, BPF_PSEUDO_MAP_FD, 0, fd));
        p.push_back(insn(0, 0, 0, 0, 0));
    };
    // Forward jumps to "submit", patched at the end.
    std::vector<std::size_t> to_submit;
    auto jump_to_submit = [&](bpf_insn j) {
        to_submit.push_back(p.size());
        p.push_back(j);
    };
    ld_map(BPF_REG_1, ring_fd);
    p.push_back(mov_imm(BPF_REG_2, std::int32_t(record_bytes)));
    p.push_back(mov_imm(BPF_REG_3, 0));
    p.push_back(call(BPF_FUNC_ringbuf_reserve));
    // if r0 == 0: return TC_ACT_SHOT
    const std::size_t words = record_bytes / 8;
    p.push_back(insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 2, 0));
    p.push_back(mov_imm(BPF_REG_0, 2));  // TC_ACT_SHOT
    p.push_back(exit_());
    p.push_back(mov_reg(BPF_REG_7, BPF_REG_0));
    for (std::size_t w = 0; w < words; ++w)
        p.push_back(insn(BPF_ST | BPF_MEM | BPF_DW, BPF_REG_7, 0, std::int16_t(w * 8), 0));
    // A deny from XDP.
    p.push_back(
        insn(BPF_ST | BPF_MEM | BPF_B, BPF_REG_7, 0, std::int16_t(offsetof(jg_event, hook)), JG_HOOK_XDP));
    p.push_back(insn(BPF_ST | BPF_MEM | BPF_B, BPF_REG_7, 0, std::int16_t(offsetof(jg_event, verdict)),
                     JG_VERDICT_DENY));
    // The flags, as jg_event_submit (bpf/jg_common.bpf.h) chooses them for a
    // denial: r8 = FORCE_WAKEUP above 1/JG_RING_WAKE_SHARE of the ring (made
    // with JG_RINGBUF_BYTES) waiting, 0 (the
    // default: wake a consumer that had caught up) below; either subject to
    // jg_wake when it may wake (above the mark, or only this record
    // waiting): NO_WAKEUP before jg_wake's time, else that time moves on by
    // JG_RING_WAKE_GAP_NS.
    ld_map(BPF_REG_1, ring_fd);
    p.push_back(mov_imm(BPF_REG_2, BPF_RB_AVAIL_DATA));
    p.push_back(call(BPF_FUNC_ringbuf_query));
    p.push_back(mov_imm(BPF_REG_8, BPF_RB_FORCE_WAKEUP));
    p.push_back(insn(BPF_JMP | BPF_JGT | BPF_K, BPF_REG_0, 0, 2,
                     std::int32_t(JG_RINGBUF_BYTES / JG_RING_WAKE_SHARE)));
    p.push_back(mov_imm(BPF_REG_8, 0));
    jump_to_submit(insn(BPF_JMP | BPF_JGT | BPF_K, BPF_REG_0, 0, 0, std::int32_t(record_bytes + 8)));
    p.push_back(call(BPF_FUNC_ktime_get_coarse_ns));
    p.push_back(mov_reg(BPF_REG_9, BPF_REG_0));
    p.push_back(insn(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -4, 0));
    ld_map(BPF_REG_1, wake_fd);
    p.push_back(mov_reg(BPF_REG_2, BPF_REG_10));
    p.push_back(insn(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4));
    p.push_back(call(BPF_FUNC_map_lookup_elem));
    jump_to_submit(insn(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 0, 0));
    p.push_back(insn(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_1, BPF_REG_0, 0, 0));
    // if now >= next: next = now + gap; else flags = NO_WAKEUP
    p.push_back(insn(BPF_JMP | BPF_JGE | BPF_X, BPF_REG_9, BPF_REG_1, 2, 0));
    p.push_back(mov_imm(BPF_REG_8, BPF_RB_NO_WAKEUP));
    jump_to_submit(insn(BPF_JMP | BPF_JA, 0, 0, 0, 0));
    p.push_back(insn(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_9, 0, 0, std::int32_t(JG_RING_WAKE_GAP_NS)));
    p.push_back(insn(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_0, BPF_REG_9, 0, 0));
    // submit:
    for (std::size_t at : to_submit) p[at].off = std::int16_t(p.size() - at - 1);
    p.push_back(mov_reg(BPF_REG_1, BPF_REG_7));
    p.push_back(mov_reg(BPF_REG_2, BPF_REG_8));
    p.push_back(call(BPF_FUNC_ringbuf_submit));
    p.push_back(mov_imm(BPF_REG_0, 0));  // TC_ACT_OK
    p.push_back(exit_());
    return load(BPF_PROG_TYPE_SCHED_CLS, "jg_ring_prod", p);
}

int load_xdp_spoofer(std::uint32_t off_a, std::uint32_t off_b) {
    const std::uint32_t end = std::max(off_a, off_b) + 4;
    std::vector<bpf_insn> p;
    p.push_back(
        insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_6, BPF_REG_1, std::int16_t(offsetof(xdp_md, data)), 0));
    p.push_back(
        insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, std::int16_t(offsetof(xdp_md, data_end)), 0));
    p.push_back(mov_reg(BPF_REG_2, BPF_REG_6));
    p.push_back(insn(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, std::int32_t(end)));
    // if data + end > data_end: XDP_ABORTED (6 instructions on)
    p.push_back(insn(BPF_JMP | BPF_JGT | BPF_X, BPF_REG_2, BPF_REG_3, 6, 0));
    p.push_back(call(BPF_FUNC_get_prandom_u32));
    p.push_back(insn(BPF_STX | BPF_MEM | BPF_W, BPF_REG_6, BPF_REG_0, std::int16_t(off_a), 0));
    p.push_back(call(BPF_FUNC_get_prandom_u32));
    p.push_back(insn(BPF_STX | BPF_MEM | BPF_W, BPF_REG_6, BPF_REG_0, std::int16_t(off_b), 0));
    p.push_back(mov_imm(BPF_REG_0, XDP_TX));
    p.push_back(exit_());
    p.push_back(mov_imm(BPF_REG_0, XDP_ABORTED));
    p.push_back(exit_());
    return load(BPF_PROG_TYPE_XDP, "jg_spoofer", p);
}

}  // namespace jgbench
