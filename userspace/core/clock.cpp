#include "core/clock.h"

#include <fmt/format.h>
#include <time.h>

#include <string>

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

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

unsigned days_in_month(unsigned y, unsigned m) {
    static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : kDays[m - 1];
}

}  // namespace

Result<std::int64_t> parse_rfc3339_us(std::string_view t) {
    auto bad = [&](std::string_view why) -> Result<std::int64_t> {
        return err(
            fmt::format("invalid time '{}': {}; write it like 2026-11-21T09:56:00Z or "
                        "2026-11-21T10:56:00.5+01:00",
                        t, why));
    };
    std::size_t i = 0;
    // Reads exactly n digits.
    auto digits = [&](std::size_t n, unsigned& out) {
        out = 0;
        for (std::size_t k = 0; k < n; ++k, ++i) {
            if (i >= t.size() || t[i] < '0' || t[i] > '9') return false;
            out = out * 10 + unsigned(t[i] - '0');
        }
        return true;
    };
    auto expect = [&](char c) {
        if (i >= t.size() || t[i] != c) return false;
        ++i;
        return true;
    };
    unsigned year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!digits(4, year) || !expect('-') || !digits(2, month) || !expect('-') || !digits(2, day))
        return bad("expected a date YYYY-MM-DD");
    if (i >= t.size() || (t[i] != 'T' && t[i] != 't' && t[i] != ' '))
        return bad("expected 'T' and a time after the date");
    ++i;
    if (!digits(2, hour) || !expect(':') || !digits(2, minute) || !expect(':') || !digits(2, second))
        return bad("expected a time hh:mm:ss");
    if (month < 1 || month > 12) return bad("the month must be from 01 to 12");
    if (day < 1 || day > days_in_month(year, month)) return bad("that month has no such day");
    if (hour > 23 || minute > 59 || second > 60) return bad("the time of day is out of range");
    std::int64_t micros = 0;
    if (i < t.size() && t[i] == '.') {
        ++i;
        std::size_t n = 0;
        for (; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i, ++n)
            if (n < 6) micros = micros * 10 + (t[i] - '0');
        if (n == 0 || n > 9) return bad("a fraction of a second has 1 to 9 digits");
        for (; n < 6; ++n) micros *= 10;
    }
    std::int64_t offset_s = 0;
    if (i < t.size() && (t[i] == 'Z' || t[i] == 'z')) {
        ++i;
    } else if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
        const bool minus = t[i] == '-';
        ++i;
        unsigned oh = 0, om = 0;
        if (!digits(2, oh) || !expect(':') || !digits(2, om) || oh > 23 || om > 59)
            return bad("an offset is written +hh:mm or -hh:mm");
        offset_s = (minus ? -1 : 1) * std::int64_t(oh * 3600 + om * 60);
    } else {
        return bad("expected Z or an offset such as +01:00 after the time");
    }
    if (i != t.size()) return bad("unexpected text after the time");
    const std::int64_t secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    return (secs - offset_s) * 1000000 + micros;
}

}  // namespace jg
