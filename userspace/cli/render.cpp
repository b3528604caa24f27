#include "cli/render.h"

#include <fmt/format.h>

#include "core/duration.h"

namespace jg {

namespace {

std::string approvers_text(const nlohmann::json& j) {
    std::string s;
    if (j.contains("approvers"))
        for (auto& a : j["approvers"]) s += (s.empty() ? "" : ",") + a.get<std::string>();
    return s.empty() ? "-" : s;
}

// The principal: "from 203.0.113.7" for a remote source; empty for a local user.
std::string from_text(const nlohmann::json& j) {
    return j.contains("src") ? fmt::format("  from {}", j["src"].get<std::string>()) : std::string();
}

std::string request_line(const nlohmann::json& r) {
    std::string s = fmt::format("request {}  {}  {}/{}{}  by {}  for {}", r.value("request_id", 0),
                                r.value("state", ""), r.value("port", 0), r.value("proto", ""), from_text(r),
                                r.value("user", ""), format_duration(r.value("duration_s", std::int64_t(0))));
    if (r.contains("approvers") && !r["approvers"].empty())
        s += fmt::format("  approved by {}", approvers_text(r));
    if (r.contains("approvals_required") && r.value("state", "") == "pending")
        s += fmt::format("  ({} of {} approvals)", r["approvers"].size(), r["approvals_required"].get<int>());
    s += fmt::format("  reason: {}", r.value("reason", ""));
    if (r.contains("ticket")) s += fmt::format("  ticket: {}", r["ticket"].get<std::string>());
    return s;
}

std::string grant_line(const nlohmann::json& g) {
    // A local grant is held by its user; a remote one by its source, asked for by a user.
    const std::string holder =
        g.contains("src")
            ? fmt::format("from {}  asked by {}", g["src"].get<std::string>(), g.value("user", ""))
            : fmt::format("for {}", g.value("user", ""));
    std::string s = fmt::format("grant {}  {}  {}/{}  {}", g.value("grant_id", 0), g.value("state", ""),
                                g.value("port", 0), g.value("proto", ""), holder);
    if (g.value("state", "") == "active")
        s += fmt::format("  {} left (until {})", format_duration(g.value("remaining_s", std::int64_t(0))),
                         g.value("expires_at", ""));
    else
        s += fmt::format("  ended {} by {}", g.value("ended_at", ""), g.value("ended_by", ""));
    s += fmt::format("  approved by {}  request {}", approvers_text(g), g.value("request_id", 0));
    return s;
}

}  // namespace

std::string render_human(const std::string& op, const nlohmann::json& r) {
    if (op == "request" || op == "approve" || op == "deny") {
        std::string s = request_line(r) + "\n";
        const std::string st = r.value("state", "");
        if (st == "pending" && op == "request")
            s += fmt::format("waiting for approval: an approver runs  jitgate approve {}\n",
                             r.value("request_id", 0));
        if (st == "granted")
            s += fmt::format(
                "granted: grant {} is active until {}{}\n", r.value("grant_id", 0), r.value("expires_at", ""),
                r.contains("src") ? fmt::format(" for connections from {}", r["src"].get<std::string>())
                                  : "");
        return s;
    }
    if (op == "revoke") return grant_line(r) + "\n";
    if (op == "list") {
        std::string s;
        for (auto& q : r["requests"]) s += request_line(q) + "\n";
        for (auto& g : r["grants"]) s += grant_line(g) + "\n";
        if (s.empty()) s = "nothing to show\n";
        return s;
    }
    if (op == "status") {
        std::string s = fmt::format("jitgated {} (ABI v{}), cgroup {}\n", r.value("version", ""),
                                    r.value("abi_version", 0), r.value("cgroup", ""));
        s += "programs:\n";
        for (auto& p : r["programs"])
            s += fmt::format("  {:<12} link {:<6} {}\n", p.value("name", ""), p.value("link_id", 0),
                             p.value("attached", false) ? "attached" : "NOT ATTACHED");
        if (r.contains("xdp") && !r["xdp"].empty()) {
            s += "xdp:\n";
            for (auto& x : r["xdp"]) {
                const std::string note = x.value("note", "");
                s += x.value("attached", false)
                         ? fmt::format("  {:<12} link {:<6} {}{}\n", x.value("interface", ""),
                                       x.value("link_id", 0), x.value("mode", ""),
                                       note.empty() ? "" : " (" + note + ")")
                         : fmt::format("  {:<12} NOT ATTACHED: {}\n", x.value("interface", ""), note);
            }
        }
        s += "protected ports:\n";
        for (auto& p : r["ports"]) {
            std::string a;
            for (auto& x : p["approvers"]) a += (a.empty() ? "" : ",") + x.get<std::string>();
            s +=
                fmt::format("  {:<14} {}/{:<5} {:<8} max {:<6} approvers {} (need {})\n", p.value("name", ""),
                            p.value("port", 0), p.value("proto", ""), p.value("mode", ""),
                            p.value("max_duration", ""), a, p.value("approvals_required", 1));
        }
        s += fmt::format("active grants: {}\n", r["grants"].size());
        for (auto& g : r["grants"]) s += "  " + grant_line(g) + "\n";
        s += fmt::format("pending requests: {}\n", r.value("pending_requests", 0));
        auto& c = r["counters"];
        s += fmt::format(
            "counters: allow {} deny {} would_deny {} egress_drop {} xdp_drop {} ingress_drop {} events_lost "
            "{}\n",
            c.value("allow", 0), c.value("deny", 0), c.value("would_deny", 0), c.value("egress_drop", 0),
            c.value("xdp_drop", 0), c.value("ingress_drop", 0), c.value("events_lost", 0));
        return s;
    }
    return r.dump(2) + "\n";
}

}  // namespace jg
