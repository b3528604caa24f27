#include "util/log.h"

#include <fmt/format.h>

#include <utility>

namespace jg {

namespace {
std::function<void(std::string_view)>& sink() {
    static std::function<void(std::string_view)> s;
    return s;
}
}  // namespace

void log(std::string_view message) {
    if (sink())
        sink()(message);
    else
        fmt::print(stderr, "jitgated: {}\n", message);
}

void set_log_sink(std::function<void(std::string_view)> s) { sink() = std::move(s); }

}  // namespace jg
