#pragma once
// The kernel's decision records (jg_events, a BPF ring buffer) as the
// daemon reads them: one owner of libbpf's ring_buffer, freed on every way
// out, handing each record over as a jg_event, a batch at a time.
#include <cstddef>
#include <functional>
#include <memory>

#include "bpf/loader.h"
#include "core/result.h"
#include "jitgate/abi.h"

namespace jg {

class EventRing {
public:
    // False: take no more records now (the caller is stopping; the rest
    // stays in the ring for the next start).
    using OnEvent = std::function<bool(const jg_event&)>;
    // Records are handed to on_event at most `batch` per poll(), so that a
    // flood cannot starve the caller's other work.
    static Result<EventRing> open(const Kernel& k, std::size_t batch, OnEvent on_event);
    EventRing(EventRing&&) noexcept;
    EventRing& operator=(EventRing&&) noexcept;
    ~EventRing();

    // The fd to wait on in epoll: readable when records wait.
    int epoll_fd() const;
    // Hands at most one batch of waiting records to on_event: true when
    // the batch filled (more may wait), false also when on_event said stop.
    bool poll() const;
    // How many records the last poll() handed over.
    std::size_t last_taken() const;
    // Hands over every waiting record, a batch at a time.
    void drain() const;

    // The ring and the callback's state (private to event_ring.cpp).
    struct State;

private:
    explicit EventRing(std::unique_ptr<State> s);
    std::unique_ptr<State> s_;
};

}  // namespace jg
