#pragma once
// Human-readable output of daemon replies.
#include <nlohmann/json.hpp>
#include <string>

namespace jg {

std::string render_human(const std::string& op, const nlohmann::json& result);

// One line for request --wait: "request 12: pending, 1 of 2 approvals (alice)",
// "request 12: granted, grant 13, 9m59s remaining until ...", or who
// rejected it and why, or why it expired.
std::string render_wait_state(const nlohmann::json& request);

}  // namespace jg
