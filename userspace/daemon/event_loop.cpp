#include "daemon/event_loop.h"

#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "daemon/startup.h"
#include "jitgate/abi.h"
#include "util/log.h"

namespace jg {

Result<bool> Loop::open(Loop& l, const Options& o, const sigset_t& signals, const Kernel& k,
                        EventRing::OnEvent on_event) {
    raise_fd_limit();  // room for every control-socket client
    l.ep.reset(epoll_create1(EPOLL_CLOEXEC));
    if (!l.ep) return err(fmt::format("create the main loop's epoll set: {}", std::strerror(errno)));
    auto add = [&l](int fd) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(l.ep.get(), EPOLL_CTL_ADD, fd, &ev);
    };
    auto server = Server::listen(o.socket, l.ep.get());
    if (!server) return err(server.error());
    l.server.emplace(std::move(*server));
    l.out.emplace(*l.server);
    l.sfd.reset(signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!l.sfd) return err(fmt::format("create the signal descriptor: {}", std::strerror(errno)));
    add(l.sfd.get());
    auto ring = EventRing::open(k, kRingBatch, std::move(on_event));
    if (!ring) return err(ring.error());
    l.ring.emplace(std::move(*ring));
    add(l.ring->epoll_fd());
    auto watcher = AddrWatcher::open();
    if (!watcher) return err(watcher.error());
    l.watcher.emplace(std::move(*watcher));
    add(l.watcher->fd());
    if (o.metrics_address.empty()) return true;
    auto addr = parse_metrics_address(o.metrics_address);
    if (!addr) return err(addr.error());
    auto h = MetricsHttp::listen(*addr, l.ep.get());
    if (!h) return err(h.error());
    l.http.emplace(std::move(*h));
    log(fmt::format("serving metrics at http://{}/metrics", o.metrics_address));
    return true;
}

int loop_wait_ms(std::optional<std::uint64_t> next_end, std::uint64_t now_boot, bool ring_busy) {
    const int drain_ms = ring_busy ? kRingBusyWaitMs : JG_RING_DRAIN_MS;
    if (!next_end) return drain_ms;
    if (*next_end <= now_boot) return 0;
    return int(std::min<std::uint64_t>(drain_ms, (*next_end - now_boot + 999999) / 1000000));
}

}  // namespace jg
