#pragma once
// The two clocks jitgate uses: CLOCK_BOOTTIME for expiry (what the kernel
// programs compare against, and it keeps counting through suspend), and the
// wall clock for people and the audit log.
#include <cstdint>
#include <string>

namespace jg {

std::uint64_t boottime_ns();
std::int64_t wall_us();                        // microseconds since the epoch, UTC
std::string rfc3339_us(std::int64_t wall_us);  // 2026-11-21T09:56:00.123456Z

}  // namespace jg
