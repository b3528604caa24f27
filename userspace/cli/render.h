#pragma once
// Human-readable output of daemon replies. Every string in a reply is
// escaped (core/text.h escape_terminal) before it is laid out: reasons,
// tickets, process and user names reach a terminal as text, never as controls.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace jg {

std::string render_human(const std::string& op, const nlohmann::json& result);

// One line for request --wait: "request 12: pending, 1 of 2 approvals (alice)",
// "request 12: granted, grant 13, 9m59s remaining until ...", or who
// rejected it and why, or why it expired.
std::string render_wait_state(const nlohmann::json& request);
// What a requester waits for, after the first state line of a wait: "by
// alice or @dba, until <expires_at>" (empty parts left out).
std::string render_wait_for(const nlohmann::json& request);
// The line a terminal shows while a wait goes on, rewritten each second:
// "waiting 1m5s for a decision on request 5".
std::string render_waiting(const nlohmann::json& request, std::int64_t waited_s);

}  // namespace jg
