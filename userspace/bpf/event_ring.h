#pragma once
// The kernel's decision records (jg_events, a BPF ring buffer) as the
// daemon reads them: one owner of libbpf's ring_buffer, freed on every way
// out, so that nothing outside userspace/bpf/ calls ring_buffer__*.
#include <cstddef>
#include <memory>

#include "core/result.h"

struct ring_buffer;

namespace jg {

class EventRing {
public:
    // libbpf's sample callback: a non-zero return stops the current consume
    // and becomes its result (the daemon's batch budget).
    using Callback = int (*)(void* ctx, void* data, std::size_t size);
    static Result<EventRing> open(int map_fd, Callback cb, void* ctx);
    // The fd to wait on in epoll: readable when records wait.
    int epoll_fd() const;
    // Hands waiting records to the callback: how many, or the callback's
    // non-zero return, or -errno.
    int consume() const;

private:
    struct Free {
        void operator()(ring_buffer* rb) const;
    };
    explicit EventRing(ring_buffer* rb) : rb_(rb) {}
    std::unique_ptr<ring_buffer, Free> rb_;
};

}  // namespace jg
