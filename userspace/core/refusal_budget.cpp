#include "core/refusal_budget.h"

#include <fmt/format.h>

#include <utility>

namespace jg {

namespace {

// A clock that stepped back ends the window too: never one that cannot end.
bool window_over(std::int64_t start_us, std::int64_t now_us) {
    return now_us < start_us || now_us - start_us >= RefusalBudget::kWindowUs;
}

}  // namespace

bool RefusalBudget::admit(std::uint32_t uid, std::int64_t now_us) {
    // A new window, unless refusals counted in the last wait for ended().
    if (!started_ || (window_over(start_us_, now_us) && counted_.suppressed == 0)) {
        started_ = true;
        start_us_ = now_us;
        recorded_ = 0;
    }
    if (recorded_ < kPerWindow) {
        ++recorded_;
        return true;
    }
    ++counted_.suppressed;
    if (counted_.uids.count(uid) == 0) {
        if (counted_.uids.size() < kUidsNamed)
            counted_.uids.insert(uid);
        else
            counted_.more_uids = true;
    }
    return false;
}

std::optional<RefusalBudget::Closing> RefusalBudget::ended(std::int64_t now_us) {
    if (counted_.suppressed == 0 || !window_over(start_us_, now_us)) return std::nullopt;
    start_us_ = now_us;
    recorded_ = 0;
    return std::exchange(counted_, {});
}

nlohmann::json refusal_closing(const RefusalBudget::Closing& c) {
    std::string uids;
    for (std::uint32_t u : c.uids) uids += (uids.empty() ? "" : ", ") + std::to_string(u);
    if (c.more_uids) uids += ", and others";
    return {{"type", "auth_failed"},
            {"auth", "oidc"},
            {"suppressed", c.suppressed},
            {"reason",
             fmt::format("{} more tokens were refused within {} s, counted here rather than recorded one "
                         "by one (presented by uid {})",
                         c.suppressed, RefusalBudget::kWindowUs / 1000000, uids)}};
}

}  // namespace jg
