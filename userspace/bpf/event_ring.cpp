#include "bpf/event_ring.h"

#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace jg {

struct EventRing::State {
    OnEvent on_event;
    std::size_t batch = 0;
    std::size_t taken = 0;
    ring_buffer* rb = nullptr;  // after the fields its callback reads
    ~State() {
        if (rb) ring_buffer__free(rb);
    }
};

namespace {

// A negative return stops ring_buffer__consume after this record (it is
// consumed) and becomes its result.
constexpr int kBatchFull = -EAGAIN;
constexpr int kStopped = -ECANCELED;

int on_sample(void* ctx, void* data, std::size_t size) {
    auto* s = static_cast<EventRing::State*>(ctx);
    if (size >= sizeof(jg_event)) {
        jg_event e;
        std::memcpy(&e, data, sizeof(e));
        if (!s->on_event(e)) return kStopped;
    }
    return ++s->taken >= s->batch ? kBatchFull : 0;
}

}  // namespace

EventRing::EventRing(std::unique_ptr<State> s) : s_(std::move(s)) {}
EventRing::EventRing(EventRing&&) noexcept = default;
EventRing& EventRing::operator=(EventRing&&) noexcept = default;
EventRing::~EventRing() = default;

Result<EventRing> EventRing::open(const Kernel& k, std::size_t batch, OnEvent on_event) {
    auto s = std::make_unique<State>();
    s->on_event = std::move(on_event);
    s->batch = batch;
    // The state is on the heap: its address, libbpf's ctx, survives moves.
    s->rb = ring_buffer__new(k.events_map_fd(), on_sample, s.get(), nullptr);
    if (!s->rb) return err(fmt::format("open the event ring buffer: {}", std::strerror(errno)));
    return EventRing(std::move(s));
}

int EventRing::epoll_fd() const { return ring_buffer__epoll_fd(s_->rb); }

bool EventRing::poll() const {
    s_->taken = 0;
    return ring_buffer__consume(s_->rb) == kBatchFull;
}

std::size_t EventRing::last_taken() const { return s_->taken; }

void EventRing::drain() const {
    while (poll()) {
    }
}

}  // namespace jg
