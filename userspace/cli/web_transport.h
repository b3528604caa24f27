#pragma once
// jitgate --web URL: the CLI's operations through jitgate-web's HTTP API
// (POST /api/v1/op, design.md §8) instead of the control socket, as the
// user whose ID token `jitgate login URL` stored.
#include <nlohmann/json.hpp>
#include <string>

#include "core/result.h"

namespace jg {

// One operation: jitgated's reply object as the socket gives it
// ({"ok":...,"result"|"error"}, with "events" holding a stream's lines).
// No usable token (none stored, unsafe file, expired and not renewable, or
// refused by jitgate-web: HTTP 401): an error reply with code auth_failed
// whose message says to run jitgate login URL. Err when jitgate-web cannot
// be reached or answers something that is not a reply.
Result<nlohmann::json> web_call(const std::string& url, const std::string& op, const nlohmann::json& args,
                                int reply_timeout_ms);

}  // namespace jg
