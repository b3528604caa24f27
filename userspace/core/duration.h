#pragma once
// Durations as people write them: 90s, 15m, 1h, 1h30m, 2d.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace jg {

// Longest duration anything in jitgate accepts (a year): keeps every
// arithmetic on nanoseconds far from overflow.
inline constexpr std::int64_t kMaxDurationSeconds = 366LL * 24 * 3600;

// Parses "1h30m"-style text into whole seconds (> 0, <= kMaxDurationSeconds).
Result<std::int64_t> parse_duration(std::string_view text);

// Formats seconds the way parse_duration reads them ("1h30m", "45s", "0s").
std::string format_duration(std::int64_t seconds);

}  // namespace jg
