#pragma once
// jitgated's one line logger: every message goes to stderr (the journal
// under systemd) as "jitgated: <message>".  Tests may catch the lines.
#include <functional>
#include <string_view>

namespace jg {

void log(std::string_view message);

// Replaces where log() writes (nullptr: stderr again); for unit tests.
void set_log_sink(std::function<void(std::string_view)> sink);

}  // namespace jg
