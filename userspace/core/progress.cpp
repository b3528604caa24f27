#include "core/progress.h"

#include <fmt/format.h>

#include <utility>

namespace jg {

Progress::Progress(std::string what, std::uint64_t total, std::int64_t now_ms, std::int64_t every_ms)
    : what_(std::move(what)), total_(total), start_ms_(now_ms), every_ms_(every_ms), last_ms_(now_ms) {}

std::optional<std::string> Progress::step(std::uint64_t done, std::int64_t now_ms) {
    if (now_ms - last_ms_ < every_ms_) return std::nullopt;
    last_ms_ = now_ms;
    const std::uint64_t pct = total_ ? done * 100 / total_ : 100;
    return fmt::format("{}: {}/{} ({}%)", what_, done, total_, pct);
}

}  // namespace jg
