#pragma once
// Audit records rendered for people (`jitgate audit`): the daemon sends
// records; only the CLI turns them into text for a terminal.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace jg {

using json = nlohmann::json;

// One readable line, without a newline: ts, #seq, type, the context. Values
// are untrusted (comm, reason): control characters and invalid UTF-8 are
// escaped, so a record cannot move the cursor or forge another line.
std::string render_event_human(const json& record);

// `text` with the same escapes (control characters as \n, \x1b, \u009b...,
// invalid UTF-8 as \xff, quotes and backslashes), without adding quotes.
std::string printable(std::string_view text);

}  // namespace jg
