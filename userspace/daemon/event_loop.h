#pragma once
// What jitgated's main loop waits on: one epoll set and every descriptor in
// it (signals, the control socket, the kernel's event ring, address
// changes, the metrics endpoint), each closed on every way out.
#include <signal.h>

#include <cstdint>
#include <optional>
#include <string>

#include "bpf/event_ring.h"
#include "bpf/loader.h"
#include "core/result.h"
#include "daemon/audit_feed.h"
#include "daemon/metrics_http.h"
#include "daemon/netlink.h"
#include "daemon/server.h"
#include "util/unique_fd.h"

namespace jg {

struct Loop {
    // Records taken from the ring per turn of the main loop, so that a
    // flood cannot starve the control socket and the clock.
    static constexpr std::size_t kRingBatch = 4096;

    struct Options {
        std::string socket;           // the control socket's path
        std::string metrics_address;  // "" for none
    };
    // Opens every descriptor and adds it to the epoll set; `on_event` gets
    // each kernel decision record (false: take no more now).
    static Result<bool> open(Loop& l, const Options& o, const sigset_t& signals, const Kernel& k,
                             EventRing::OnEvent on_event);

    unique_fd ep, sfd;
    std::optional<Server> server;
    std::optional<ServerOutput> out;  // the server, as the audit feed writes to it
    std::optional<EventRing> ring;    // freed before daemon_stop is written
    std::optional<AddrWatcher> watcher;
    std::optional<MetricsHttp> http;
};

// How long the loop may wait: until the next grant ends (boot ns, so that
// its connections are cut then, not at the next tick), and at most until
// the ring is to be drained (the kernel submits allow records without
// waking us, and other records wake us at most once per
// JG_RING_WAKE_GAP_NS: abi.h).  `ring_busy`: records came a moment ago, so
// more may wait that woke nobody: drained again within kRingBusyWaitMs.
int loop_wait_ms(std::optional<std::uint64_t> next_end, std::uint64_t now_boot, bool ring_busy = false);

// While records came within kRingBusyMs, the loop drains the ring every
// kRingBusyWaitMs instead of every JG_RING_DRAIN_MS: a record whose wake-up
// the kernel held back (the gap, on the coarse clock: up to a tick more,
// 10 ms at HZ=100) waits about a millisecond, not the whole drain period.
constexpr int kRingBusyMs = 20;
constexpr int kRingBusyWaitMs = 1;

}  // namespace jg
