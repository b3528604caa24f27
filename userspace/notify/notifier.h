#pragma once
// jitgate notify's delivery (design.md §9).  The audit log is the queue:
// one reader follows jitgated's stream and hands each new record to the
// targets it is for; a target that falls behind (started after a stop,
// its queue full, the stream cut) reads the records after the last seq it
// acknowledged from jitgated (op audit, after_seq) until it has caught up.
// Each target has a thread that sends its records one at a time, in seq
// order, each until a 2xx (at least once: the idempotency key is the seq),
// and writes the seq it reached to its state file after each delivery.
#include <atomic>
#include <cstdint>
#include <string>

#include "notify/config.h"
#include "notify/http.h"

namespace jg::notify {

struct Options {
    std::string socket = "/run/jitgate/jitgate.sock";
    std::string state_dir;
    std::int64_t retry_first_ms = 500;  // the first wait after a failure, doubled after each
    std::int64_t retry_max_ms = 60000;  // the longest wait between two tries
    PostLimits limits;
};

// Runs until *stop; the exit code (0: stopped; 1: cannot go on).
int run(const Config& cfg, const Options& o, const std::atomic<bool>& stop);

}  // namespace jg::notify
