#include "bpf/event_ring.h"

#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace jg {

void EventRing::Free::operator()(ring_buffer* rb) const { ring_buffer__free(rb); }

Result<EventRing> EventRing::open(int map_fd, Callback cb, void* ctx) {
    ring_buffer* rb = ring_buffer__new(map_fd, cb, ctx, nullptr);
    if (!rb) return err(fmt::format("open the event ring buffer: {}", std::strerror(errno)));
    return EventRing(rb);
}

int EventRing::epoll_fd() const { return ring_buffer__epoll_fd(rb_.get()); }

int EventRing::consume() const { return ring_buffer__consume(rb_.get()); }

}  // namespace jg
