#include "core/clock.h"

#include <fmt/format.h>
#include <time.h>

namespace jg {

std::uint64_t boottime_ns() {
    timespec ts{};
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return std::uint64_t(ts.tv_sec) * 1000000000ULL + std::uint64_t(ts.tv_nsec);
}

std::int64_t wall_us() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return std::int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

std::string rfc3339_us(std::int64_t us) {
    time_t secs = static_cast<time_t>(us / 1000000);
    std::int64_t frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        --secs;
    }
    tm t{};
    gmtime_r(&secs, &t);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", t.tm_year + 1900, t.tm_mon + 1,
                       t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, frac);
}

}  // namespace jg
