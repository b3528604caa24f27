#include "core/timens.h"

#include <fmt/format.h>

#include <sstream>

namespace jg {

std::optional<std::string> timens_refusal(std::string_view offsets) {
    std::istringstream in{std::string(offsets)};
    std::string shifted;
    for (std::string line; std::getline(in, line);) {
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        std::istringstream f(line);
        std::string clock, extra;
        long long secs = 0, nanos = 0;
        const bool read = static_cast<bool>(f >> clock >> secs >> nanos) && !(f >> extra);
        if (clock == "1") clock = "monotonic";
        if (clock == "7") clock = "boottime";
        if (!read)
            shifted += (shifted.empty() ? "" : ", ") + fmt::format("unreadable line '{}'", line);
        else if (secs != 0 || nanos != 0)
            shifted += (shifted.empty() ? "" : ", ") + fmt::format("{} {}.{:09d} s", clock, secs, nanos);
    }
    if (shifted.empty()) return std::nullopt;
    return fmt::format(
        "jitgated runs in a time namespace whose clocks are shifted ({}), but the kernel checks grant "
        "deadlines against its own CLOCK_BOOTTIME: start jitgated in the host's time namespace",
        shifted);
}

}  // namespace jg
