#include "core/limits.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace jg {

Result<std::pair<int, std::int64_t>> parse_rate(std::string_view text) {
    const auto slash = text.find('/');
    const std::string_view n = text.substr(0, slash);
    const std::string_view unit = slash == std::string_view::npos ? "" : text.substr(slash + 1);
    const std::string bad = fmt::format(
        "'{}' is not a rate: write how many requests per second, minute or hour, as \"30/m\"", text);
    if (n.empty() || n.size() > 6 ||
        !std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return err(bad);
    const int count = std::stoi(std::string(n));
    if (count < 1) return err(fmt::format("request rate '{}' must allow at least 1 request", text));
    if (unit == "s") return std::pair<int, std::int64_t>{count, 1};
    if (unit == "m") return std::pair<int, std::int64_t>{count, 60};
    if (unit == "h") return std::pair<int, std::int64_t>{count, 3600};
    return err(bad);
}

std::string format_rate(int burst, std::int64_t period_s) {
    const char* unit = period_s == 1 ? "second" : period_s == 60 ? "minute" : "hour";
    return fmt::format("{} per {}", burst, unit);
}

bool RequestRate::take(std::uint32_t uid, std::uint64_t now_ns, int burst, std::int64_t period_s,
                       std::int64_t* wait_s) {
    const double per_token_ns = double(period_s) * 1e9 / double(burst);
    if (buckets_.size() > 4096) forget_full(now_ns, burst, period_s);
    auto [it, fresh] = buckets_.try_emplace(uid, Bucket{double(burst), now_ns});
    Bucket& b = it->second;
    if (!fresh && now_ns > b.at_ns)
        b.tokens = std::min(double(burst), b.tokens + double(now_ns - b.at_ns) / per_token_ns);
    b.at_ns = std::max(b.at_ns, now_ns);
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        return true;
    }
    if (wait_s)
        *wait_s = std::max<std::int64_t>(1, std::int64_t(std::ceil((1.0 - b.tokens) * per_token_ns / 1e9)));
    return false;
}

void RequestRate::forget_full(std::uint64_t now_ns, int burst, std::int64_t period_s) {
    const double per_token_ns = double(period_s) * 1e9 / double(burst);
    std::vector<std::uint32_t> full;
    for (const auto& [uid, b] : buckets_)
        if (b.tokens + double(now_ns > b.at_ns ? now_ns - b.at_ns : 0) / per_token_ns >= double(burst))
            full.push_back(uid);
    for (auto uid : full) buckets_.erase(uid);
}

}  // namespace jg
