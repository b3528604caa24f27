#include "web/pages.h"

#include <fmt/format.h>

#include <ctime>

#include "web/html.h"
#include "web/page_frame.h"

namespace jg::web {

namespace {

// A field of a reply row as text ("" when absent): strings as they are,
// numbers and lists written out.
std::string text_of(const json& row, const char* key) {
    auto it = row.find(key);
    if (it == row.end() || it->is_null()) return {};
    if (it->is_string()) return it->get<std::string>();
    if (it->is_array()) {
        std::string out;
        for (const auto& v : *it)
            out += (out.empty() ? "" : ", ") + (v.is_string() ? v.get<std::string>() : v.dump());
        return out;
    }
    return it->dump();
}

std::string e(const json& row, const char* key) { return html_escape(text_of(row, key)); }

std::string who_asked(const json& r) {
    std::string who = e(r, "user");
    if (r.contains("src")) who += " <span class=\"src\">from " + e(r, "src") + "</span>";
    return who;
}

std::string nodes_of(const json& r) {
    if (r.contains("on")) return e(r, "on");
    if (r.contains("nodes")) return e(r, "nodes");
    return "this host";
}

// In a fleet: each target node's state of this grant ("applied", "pending",
// "unresolved"), as jitgated's confirm gives it (node_states).
std::string node_states(const json& g) {
    const auto it = g.find("node_states");
    if (it == g.end() || !it->is_array() || it->empty()) return {};
    std::string out = R"(<ul class="node-states">)";
    for (const auto& n : *it)
        out += fmt::format("<li>{}: {}{}</li>", e(n, "node"), e(n, "state"),
                           n.value("alive", true) ? "" : " (not alive)");
    return out + "</ul>";
}

std::string countdown(std::int64_t left) {
    return fmt::format(R"(<span class="countdown" data-left="{}">{}</span>)", left, format_left(left));
}

std::string request_row(const PageContext& c, const json& r) {
    const std::string id = e(r, "request_id");
    const auto approvals = r.value("approvers", json::array()).size();
    const auto needed = r.value("approvals_required", 0);
    return fmt::format(
        R"(<tr id="request-{0}"><td>{0}</td><td>{1}</td><td>{2}/{3}</td><td>{4}</td>)"
        R"(<td class="reason">{5}</td><td>{6}</td><td>{7}</td><td>{8}</td><td>{9} of {10}{11}</td>)"
        R"(<td><form method="post" action="/requests/{0}/approve">{12})"
        R"(<label>Shorter duration <input name="duration" size="6" placeholder="e.g. 15m" aria-label="Shorter duration for request {0}, optional"></label> )"
        R"(<button type="submit" aria-label="Approve request {0}">Approve</button></form>)"
        R"(<form method="post" action="/requests/{0}/deny">{12})"
        R"(<label>Reason <input name="reason" size="12" aria-label="Reason to deny request {0}"></label> )"
        R"(<button type="submit" aria-label="Deny request {0}">Deny</button></form></td></tr>)",
        id, who_asked(r), e(r, "port"), e(r, "proto"), nodes_of(r), e(r, "reason"), e(r, "ticket"),
        html_escape(format_left(r.value("duration_s", std::int64_t(0)))),
        countdown(seconds_until(r.value("expires_at", ""), c.now)), approvals, needed,
        approvals ? " (" + e(r, "approvers") + ")" : "", csrf_input(c));
}

std::string grant_row(const PageContext& c, const json& g) {
    const std::string id = e(g, "grant_id");
    std::int64_t left = g.value("remaining_s", std::int64_t(-1));
    if (left < 0) left = seconds_until(g.value("expires_at", ""), c.now);
    return fmt::format(
        R"(<tr id="grant-{0}"><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}/{4}</td><td>{5}</td>)"
        R"(<td class="reason">{6}</td><td>{7}</td><td>{8}</td><td>{9}</td>)"
        R"(<td><form method="post" action="/grants/{0}/revoke">{10})"
        R"(<button type="submit" aria-label="Revoke grant {0}">Revoke</button></form></td></tr>)",
        id, e(g, "request_id"), who_asked(g), e(g, "port"), e(g, "proto"), nodes_of(g) + node_states(g),
        e(g, "reason"), e(g, "approvers"), countdown(left),
        g.value("break_glass", false) ? "break-glass" : "", csrf_input(c));
}

std::string nodes_table(const json& nodes) {
    if (!nodes.is_object() || !nodes.contains("nodes")) return {};
    std::string rows;
    for (const auto& n : nodes["nodes"])
        rows += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                            e(n, "node"), n.value("alive", false) ? "alive" : "<b>not alive</b>",
                            e(n, "applied_revision"), e(n, "lag"), e(n, "grants"), e(n, "policy_version"));
    return R"(<h2>Nodes</h2><table class="nodes"><caption>Each node's state (grants apply on a node once it has caught up)</caption>)"
           R"(<thead><tr><th scope="col">Node</th><th scope="col">State</th><th scope="col">Applied revision</th>)"
           R"(<th scope="col">Lag</th><th scope="col">Grants</th><th scope="col">Policy</th></tr></thead><tbody>)" +
           rows + "</tbody></table>";
}

}  // namespace

std::int64_t seconds_until(const std::string& t, std::chrono::system_clock::time_point now) {
    std::tm tm{};
    const char* end = strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end) return 0;
    // In seconds: a far-off time in nanoseconds (the clock's unit) would overflow.
    const std::int64_t left =
        std::int64_t(timegm(&tm)) - std::int64_t(std::chrono::system_clock::to_time_t(now));
    return left > 0 ? left : 0;
}

std::string format_left(std::int64_t s) {
    if (s <= 0) return "0s";
    std::string out;
    if (s >= 3600) out += fmt::format("{}h", s / 3600);
    if (s >= 3600)
        out += fmt::format("{:02}m", s % 3600 / 60);
    else if (s >= 60)
        out += fmt::format("{}m", s / 60);
    out += s >= 60 ? fmt::format("{:02}s", s % 60) : fmt::format("{}s", s);
    return out;
}

std::string sign_in_page(const std::string& problem) {
    PageContext c;
    c.notice = problem;
    c.notice_is_error = !problem.empty();
    return page_frame(c, "Sign in",
                      R"(<p>Approve and revoke just-in-time access with your organisation's sign-in.</p>)"
                      R"(<p><a class="button" href="/login">Sign in</a></p>)");
}

std::string signed_in_page(const std::string& next) {
    return fmt::format(R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={0}">
<title>Signed in - jitgate</title></head>
<body><p>Signed in. <a href="{0}">Continue</a></p></body></html>
)",
                       html_escape(next));
}

std::string requests_page(const PageContext& c, const json& list) {
    std::string rows;
    for (const auto& r : list.value("requests", json::array()))
        if (r.value("state", "") == "pending") rows += request_row(c, r);
    if (rows.empty())
        return page_frame(c, "Pending requests", "<p>No request is waiting for a decision.</p>");
    return page_frame(
        c, "Pending requests",
        R"(<table class="requests"><caption>Requests waiting for approval</caption><thead><tr>)"
        R"(<th scope="col">Id</th><th scope="col">Requester</th><th scope="col">Port</th><th scope="col">Nodes</th>)"
        R"(<th scope="col">Reason</th><th scope="col">Ticket</th><th scope="col">Duration</th>)"
        R"(<th scope="col">Time left</th><th scope="col">Approvals</th><th scope="col">Decide</th></tr></thead><tbody>)" +
            rows + "</tbody></table>");
}

std::string grants_page(const PageContext& c, const json& list, const json& nodes) {
    std::string rows;
    for (const char* k : {"grants", "break_glass"})
        for (const auto& g : list.value(k, json::array()))
            if (g.value("state", "") == "active") rows += grant_row(c, g);
    std::string body =
        rows.empty()
            ? "<p>No grant is active.</p>"
            : R"(<table class="grants"><caption>Active grants</caption><thead><tr>)"
              R"(<th scope="col">Grant</th><th scope="col">Request</th><th scope="col">Who</th>)"
              R"(<th scope="col">Port</th><th scope="col">Nodes</th><th scope="col">Reason</th>)"
              R"(<th scope="col">Approved by</th><th scope="col">Time left</th><th scope="col">Kind</th>)"
              R"(<th scope="col">Revoke</th></tr></thead><tbody>)" +
                  rows + "</tbody></table>";
    return page_frame(c, "Active grants", body + nodes_table(nodes));
}

std::string audit_page(const PageContext& c, const json& records) {
    std::string rows;
    for (auto it = records.rbegin(); it != records.rend(); ++it) {
        const json& r = *it;
        std::string details;
        for (const char* k : {"port", "request_id", "grant_id", "reason", "by", "src", "node"})
            if (r.contains(k)) details += fmt::format("{}={} ", k, text_of(r, k));
        rows += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", e(r, "ts"), e(r, "type"),
                            e(r, "user"), html_escape(details));
    }
    return page_frame(
        c, "Audit",
        R"(<table class="audit"><caption>Recent audit records, newest first</caption><thead><tr>)"
        R"(<th scope="col">Time</th><th scope="col">Type</th><th scope="col">User</th>)"
        R"(<th scope="col">Details</th></tr></thead><tbody>)" +
            rows + "</tbody></table>");
}

std::string error_page(const PageContext& c, int status, const std::string& message) {
    return page_frame(c, fmt::format("Error {}", status),
                      "<p class=\"error\">" + html_escape(message) + "</p>");
}

}  // namespace jg::web
