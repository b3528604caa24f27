#pragma once
// One operation asked of jitgated over the control socket, as the holder of
// an ID token: the envelope's "token" (design.md §8) makes jitgated act as
// the token's user, so jitgate-web itself has no authority.
#include <nlohmann/json.hpp>
#include <string>

namespace jg::web {

using json = nlohmann::json;

// jitgated's reply object ({"ok":...,"result"|"error"}); for a stream
// (audit) the event lines before the reply are gathered into
// "events". When jitgated cannot be reached the reply is an error with
// code "unreachable".
json ask_daemon(const std::string& socket, const std::string& op, const json& args, const std::string& token,
                int timeout_ms = 30000);

}  // namespace jg::web
