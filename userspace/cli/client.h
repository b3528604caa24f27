#pragma once
// One request, one reply over the control socket.
#include <nlohmann/json.hpp>
#include <string>

#include "core/result.h"

namespace jg {

// Err when the daemon cannot be reached (the CLI's exit code 4); otherwise
// the daemon's reply object, ok or not.
Result<nlohmann::json> call_daemon(const std::string& socket, const std::string& op,
                                   const nlohmann::json& args);

}  // namespace jg
