#pragma once
// The approval pages, rendered on the server from jitgated's replies: plain
// HTML forms that work without script and by keyboard. Every value that
// came from a user (names, reasons, tickets, audit fields) is escaped here.
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace jg::web {

using json = nlohmann::json;

struct PageContext {
    std::string user;    // who is signed in; empty on the sign-in page
    std::string csrf;    // the session's token, put in every form
    std::string notice;  // the outcome of the last action, shown once
    bool notice_is_error = false;
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

std::string sign_in_page(const std::string& problem);
// After the identity provider's redirect: a same-site step to the page, so
// that the SameSite=Strict cookie set here is sent with it.
std::string signed_in_page(const std::string& next);
// `list`: the result of op list (filter pending).
std::string requests_page(const PageContext& c, const json& list);
// `list`: the result of op list (filter active); `nodes`: op nodes' result,
// or null on a single host.
std::string grants_page(const PageContext& c, const json& list, const json& nodes);
// `records`: audit records, oldest first.
std::string audit_page(const PageContext& c, const json& records);
std::string error_page(const PageContext& c, int status, const std::string& message);

// Seconds from now until an RFC 3339 UTC time ("...Z"); 0 when past or not
// such a time.
std::int64_t seconds_until(const std::string& rfc3339, std::chrono::system_clock::time_point now);
// 1h02m03s style.
std::string format_left(std::int64_t seconds);

}  // namespace jg::web
