// The deny flood's generator (see flood_gen.h): a child in its own network
// namespace, pinned to one CPU, sending live frames into a veth.
#include "flood_gen.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "../bpf/packet.h"
#include "bench.h"
#include "env.h"
#include "raw_progs.h"

namespace jgbench {

namespace {

struct Cmd {
    std::uint32_t ms = 0;  // 0: stop
    Sources src = Sources::Random;
};
// The child's answer; frames == ~0: it could not send (errno_ says why).
struct Answer {
    std::uint64_t frames = 0, elapsed_ns = 0;
    std::int32_t err = 0;
};

// Offset in an Ethernet + IPv6 frame of the source address.
constexpr std::uint32_t kSrcOff = 14 + 8;
// Frames per BPF_PROG_RUN call (~20-100 ms at the rates of this path) and
// per batch (the kernel's maximum: one flush into the veth per 256 frames).
constexpr std::uint32_t kRepeat = 1U << 19;
constexpr std::uint32_t kBatch = 256;

// Runs `prog` on `frame` in live-frames mode until `ms` have passed.
Answer send_for(int prog, int ifindex, std::vector<std::uint8_t>& frame, std::uint32_t ms) {
    xdp_md ctx{};
    ctx.ingress_ifindex = std::uint32_t(ifindex);
    ctx.data_end = std::uint32_t(frame.size());  // the kernel wants the frame's length here
    Answer a;
    const std::uint64_t start = now_ns(), end = start + std::uint64_t(ms) * 1000000;
    // Bounded by time, and by a count should the clock stall.
    for (std::uint32_t calls = 0; now_ns() < end && calls < 100000; ++calls) {
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                    .data_size_in = std::uint32_t(frame.size()), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
                    .repeat = int(kRepeat), .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = kBatch);
        if (bpf_prog_test_run_opts(prog, &opts) != 0) {
            a.frames = ~0ULL;
            a.err = errno;
            return a;
        }
        a.frames += kRepeat;
    }
    a.elapsed_ns = now_ns() - start;
    return a;
}

[[noreturn]] void child_main(int cmd, int res, const std::string& ifname, std::uint16_t port, int cpu) {
    std::uint32_t go = 0;
    if (unshare(CLONE_NEWNET) != 0) _exit(1);
    if (write(res, &go, sizeof(go)) != sizeof(go)) _exit(1);  // "in my namespace now"
    if (read(cmd, &go, sizeof(go)) != sizeof(go)) _exit(1);   // "the veth end is here"
    if (run({"ip", "link", "set", ifname, "up"}) != 0) _exit(1);
    pin_to_cpu(cpu);
    const int ifindex = int(if_nametoindex(ifname.c_str()));
    const int spoofer = load_xdp_spoofer(kSrcOff + 4, kSrcOff + 12), tx = load_xdp_tx();
    auto frame = [&](const char* src) {
        return jgtest::Packet()
            .eth(jgtest::wire::kIPv6)
            .ipv6(src, kLocal6, jgtest::wire::kTcp)
            .tcp(40000, port)
            .finish();
    };
    std::vector<std::uint8_t> random = frame("2001:db8:7:7::7"), single = frame("2001:db8:5:5::5");
    Cmd c;
    while (read(cmd, &c, sizeof(c)) == sizeof(c) && c.ms != 0) {
        const bool rnd = c.src == Sources::Random;
        const int prog = rnd ? spoofer : tx;
        Answer a;
        if (prog < 0 || ifindex == 0) {
            a.frames = ~0ULL;
            a.err = prog < 0 ? -prog : ENODEV;
        } else {
            a = send_for(prog, ifindex, rnd ? random : single, c.ms);
        }
        if (write(res, &a, sizeof(a)) != sizeof(a)) break;
    }
    _exit(0);
}

}  // namespace

std::string Generator::start(const std::string& ifname, std::uint16_t port, int cpu) {
    int cmd[2], res[2];
    if (pipe2(cmd, O_CLOEXEC) != 0) return "no pipes for the generator";
    if (pipe2(res, O_CLOEXEC) != 0) {
        close(cmd[0]);
        close(cmd[1]);
        return "no pipes for the generator";
    }
    pid_ = fork();
    if (pid_ == 0) {
        close(cmd[1]);
        close(res[0]);
        child_main(cmd[0], res[1], ifname, port, cpu);
    }
    close(cmd[0]);
    close(res[1]);
    cmd_ = cmd[1];
    res_ = res[0];
    std::uint32_t ack = 0;
    if (pid_ < 0 || read(res_, &ack, sizeof(ack)) != sizeof(ack)) return "cannot start the generator";
    if (run({"ip", "link", "set", ifname, "netns", std::to_string(pid_)}) != 0)
        return "cannot move the veth end into the generator's namespace";
    if (write(cmd_, &ack, sizeof(ack)) != sizeof(ack)) return "the generator is gone";
    return {};
}

bool Generator::send(Sources src, std::uint32_t ms, Generated& out) {
    const Cmd c{ms, src};
    Answer a;
    if (write(cmd_, &c, sizeof(c)) != sizeof(c) || read(res_, &a, sizeof(a)) != sizeof(a)) {
        why_ = "the generator is gone";
        return false;
    }
    if (a.frames == ~0ULL) {
        why_ = std::string("the generator's live-frames run failed: ") + std::strerror(a.err);
        return false;
    }
    out = Generated{a.frames, a.elapsed_ns};
    return true;
}

void Generator::stop() {
    if (cmd_ >= 0) close(cmd_);  // EOF: the child leaves its loop
    if (res_ >= 0) close(res_);
    cmd_ = res_ = -1;
    if (pid_ > 0) {
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
}

}  // namespace jgbench
