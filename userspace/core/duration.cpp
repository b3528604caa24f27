#include "core/duration.h"

#include <fmt/format.h>

namespace jg {

Result<std::int64_t> parse_duration(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return err(fmt::format("invalid duration '{}': {} (write it like 90s, 15m, 1h or 1h30m)", text, why));
    };
    if (text.empty()) return bad("it is empty");
    std::int64_t total = 0;
    std::size_t i = 0;
    int last_rank = 100;
    while (i < text.size()) {
        std::int64_t n = 0;
        std::size_t digits = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            if (n > kMaxDurationSeconds) return bad("it is too long");
            n = n * 10 + (text[i] - '0');
            ++i;
            ++digits;
        }
        if (digits == 0) return bad("expected a number");
        if (i == text.size()) return bad("a unit (s, m, h or d) must follow each number");
        std::int64_t unit = 0;
        int rank = 0;
        switch (text[i]) {
            case 'd':
                unit = 86400;
                rank = 4;
                break;
            case 'h':
                unit = 3600;
                rank = 3;
                break;
            case 'm':
                unit = 60;
                rank = 2;
                break;
            case 's':
                unit = 1;
                rank = 1;
                break;
            default: return bad(fmt::format("unknown unit '{}'", text[i]));
        }
        if (rank >= last_rank) return bad("units must go from largest to smallest, each once");
        last_rank = rank;
        ++i;
        if (n > kMaxDurationSeconds) return bad("it is too long");
        total += n * unit;
        if (total > kMaxDurationSeconds) return bad("it is longer than a year");
    }
    if (total <= 0) return bad("it must be longer than zero");
    return total;
}

std::string format_duration(std::int64_t s) {
    if (s <= 0) return "0s";
    std::string out;
    const std::int64_t d = s / 86400, h = (s % 86400) / 3600, m = (s % 3600) / 60, sec = s % 60;
    if (d) out += fmt::format("{}d", d);
    if (h) out += fmt::format("{}h", h);
    if (m) out += fmt::format("{}m", m);
    if (sec) out += fmt::format("{}s", sec);
    return out;
}

}  // namespace jg
