#pragma once
// The deny flood's two ends (figure 4), each on its own CPU:
//  - the generator: a child process in a network namespace of its own,
//    pinned to one CPU, holding one end of a veth pair.  It runs an XDP
//    program in BPF_PROG_RUN live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES,
//    large batches): the program writes the frame's source itself
//    (bpf_get_prandom_u32, no syscall per frame) and returns XDP_TX, which
//    sends the frame into the veth.
//  - the receiver: the other end, in the benchmark's namespace, with GRO on
//    and threaded NAPI, its NAPI kthread pinned to the other CPU: whatever
//    drops the frames there (an XDP program, or nftables on the skbs the
//    stack builds) runs on that CPU alone.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace jgbench {

// Where the flood's frames come from.  Destination: kLocal6, the port given.
enum class Sources : std::uint32_t {
    Random = 1,  // a new random 2001:db8:XXXX:XXXX::YYYY:YYYY per frame (a new /64 each time)
    Single = 2,  // always 2001:db8:5:5::5 (no grant)
};

struct Generated {
    std::uint64_t frames = 0;      // frames the program ran on (each sent or refused by the full veth)
    std::uint64_t elapsed_ns = 0;  // how long that took
    double pps() const { return elapsed_ns ? double(frames) * 1e9 / double(elapsed_ns) : 0; }
};

class Generator {
public:
    Generator() = default;
    Generator(const Generator&) = delete;
    Generator& operator=(const Generator&) = delete;
    ~Generator() { stop(); }
    // Starts the child pinned to `cpu` and moves the veth end `ifname` into
    // its namespace; empty, or why it could not.
    std::string start(const std::string& ifname, std::uint16_t port, int cpu);
    // Sends for about `ms` and says how many frames it sent in `out`; false
    // (and why()) when the child failed.
    bool send(Sources src, std::uint32_t ms, Generated& out);
    const std::string& why() const { return why_; }
    void stop();

private:
    pid_t pid_ = -1;
    int cmd_ = -1, res_ = -1;
    std::string why_;
};

// The receiving end: a veth pair `ifname` / `peer` made here, GRO on,
// threaded NAPI with its kthread pinned to `cpu`.  Removed by the destructor.
class Receiver {
public:
    Receiver() = default;
    Receiver(const Receiver&) = delete;
    Receiver& operator=(const Receiver&) = delete;
    ~Receiver();
    std::string make(const std::string& ifname, const std::string& peer, int cpu);
    int ifindex() const { return ifindex_; }
    const std::string& ifname() const { return ifname_; }
    // Finds the NAPI kthread (again: a new one if the NAPI was remade) and
    // pins it; false if it could not.
    bool pin_napi();
    pid_t napi_pid() const { return napi_pid_; }
    // The time the NAPI kthread has run so far (/proc/PID/schedstat), or
    // nullopt: per frame, what a drop costs the receiving CPU, whatever
    // share of it the kthread got on a shared machine.
    std::optional<std::uint64_t> napi_runtime_ns() const;
    // Frames the XDP program on the receiving queue dropped so far (the
    // veth's rx_queue_0_xdp_drops), or nullopt.
    std::optional<std::uint64_t> xdp_drops() const;
    // Frames the receiving queue took from the veth's ring, dropped by its
    // XDP program or handed to the stack (rx_queue_0_xdp_packets).
    std::optional<std::uint64_t> frames_taken() const;

private:
    std::string ifname_;
    int ifindex_ = 0;
    int cpu_ = 0;
    pid_t napi_pid_ = -1;
};

// The veth's ethtool statistic `name`, or nullopt.
std::optional<std::uint64_t> ethtool_stat(const std::string& ifname, const std::string& name);

}  // namespace jgbench
