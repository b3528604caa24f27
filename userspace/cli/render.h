#pragma once
// Human-readable output of daemon replies.
#include <nlohmann/json.hpp>
#include <string>

namespace jg {

std::string render_human(const std::string& op, const nlohmann::json& result);

}  // namespace jg
