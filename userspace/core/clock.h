#pragma once
// The two clocks jitgate uses: CLOCK_BOOTTIME for expiry (what the kernel
// programs compare against, and it keeps counting through suspend), and the
// wall clock for people and the audit log.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace jg {

std::uint64_t boottime_ns();
std::int64_t wall_us();                        // microseconds since the epoch, UTC
std::string rfc3339_us(std::int64_t wall_us);  // 2026-11-21T09:56:00.123456Z

// The inverse of rfc3339_us, for any RFC 3339 date-time: 'T', 't' or ' '
// between date and time, an optional fraction of 1-9 digits (cut to
// microseconds), and Z or a +hh:mm / -hh:mm offset.
Result<std::int64_t> parse_rfc3339_us(std::string_view text);

// The clocks as an object, so that the workflow, the daemon and the audit
// log read one time source and tests can set it.
class Clock {
public:
    virtual ~Clock() = default;
    virtual std::uint64_t boot_ns() = 0;
    virtual std::int64_t wall_us() = 0;
};

// The host's clocks: boottime_ns() and wall_us().
class SystemClock : public Clock {
public:
    std::uint64_t boot_ns() override { return boottime_ns(); }
    std::int64_t wall_us() override { return jg::wall_us(); }
};

}  // namespace jg
