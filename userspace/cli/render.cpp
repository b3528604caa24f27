#include "cli/render.h"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>
#include <vector>

#include "cli/fleet_render.h"
#include "core/duration.h"
#include "core/metrics.h"
#include "core/operations.h"
#include "core/text.h"

namespace jg {

namespace {

using nlohmann::json;

// list keeps to this many columns.
constexpr std::size_t kWidth = 110;

// The strings of `list` joined by commas.  Built by appending: `"," + str`
// on a temporary makes GCC 12 at -O3 warn (a false -Wrestrict, GCC bug
// 105329) and a Release build fail.
std::string comma_list(const nlohmann::json& list) {
    std::string s;
    for (auto& a : list) {
        if (!s.empty()) s += ',';
        s += a.get<std::string>();
    }
    return s;
}

std::string approvers_text(const nlohmann::json& j) {
    const std::string s = j.contains("approvers") ? comma_list(j["approvers"]) : std::string();
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
    if (r.contains("extends")) s += fmt::format("  more time on grant {}", r.value("extends", 0));
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

bool is_break_glass(const json& j) { return j.value("break_glass", false); }

// "2027-01-15T08:30:00.000000Z" as "2027-01-15 08:30:00Z"; anything else as it is.
std::string short_time(const std::string& t) {
    if (t.size() < 19 || t[10] != 'T') return t;
    return t.substr(0, 10) + " " + t.substr(11, 8) + "Z";
}

// "5432/tcp", or "5432/tcp from 203.0.113.7" for a remote principal.
std::string where_text(const json& j) {
    std::string s = fmt::format("{}/{}", j.value("port", 0), j.value("proto", ""));
    if (j.contains("src")) s += fmt::format(" from {}", j["src"].get<std::string>());
    return s;
}

// Lays out an item: `fields` joined by two spaces, wrapped at kWidth; the
// first line indented by `indent`, the lines after it by `indent` + 4. A
// field goes whole onto the next line when it does not fit; only a field
// longer than a line is broken, at its spaces, and a word longer than a line
// where the line ends.
std::string wrap(const std::vector<std::string>& fields, std::size_t indent) {
    const std::size_t cont = indent + 4;
    std::string out(indent, ' ');
    std::size_t col = indent;
    bool empty = true;  // nothing on this line yet
    auto newline = [&] {
        out += '\n';
        out.append(cont, ' ');
        col = cont;
        empty = true;
    };
    // `text` after `gap` spaces (none at the start of a line).
    auto put = [&](std::string_view text, std::size_t gap) {
        if (!empty) {
            out.append(gap, ' ');
            col += gap;
        }
        out.append(text);
        col += text.size();
        empty = false;
    };
    for (const std::string& f : fields) {
        if (col + (empty ? 0 : 2) + f.size() <= kWidth) {
            put(f, 2);
            continue;
        }
        if (!empty && cont + f.size() <= kWidth) {
            newline();
            put(f, 2);
            continue;
        }
        std::size_t gap = 2;
        for (std::size_t i = 0; i <= f.size();) {
            const std::size_t sp = std::min(f.find(' ', i), f.size());
            std::string_view w = std::string_view(f).substr(i, sp - i);
            i = sp + 1;
            if (w.empty()) continue;
            if (col + (empty ? 0 : gap) + w.size() > kWidth) {
                if (cont + w.size() <= kWidth) {
                    newline();
                } else {  // cut it where the line ends
                    if (!empty && col + gap >= kWidth) newline();
                    if (!empty) {
                        out.append(gap, ' ');
                        col += gap;
                    }
                    while (col + w.size() > kWidth) {
                        out.append(w.substr(0, kWidth - col));
                        w.remove_prefix(kWidth - col);
                        newline();
                    }
                }
            }
            put(w, gap);
            gap = 1;
        }
    }
    return out + "\n";
}

// The second part of a list item: its reason and ticket.
std::string why_block(const json& j) {
    std::vector<std::string> f{
        fmt::format("reason: {}", j.value("reason", "").empty() ? "-" : j.value("reason", ""))};
    if (j.contains("ticket")) f.push_back(fmt::format("ticket: {}", j["ticket"].get<std::string>()));
    return wrap(f, 6);
}

std::string request_item(const json& r) {
    const std::string state = r.value("state", "");
    std::vector<std::string> f{fmt::format("request {}", r.value("request_id", 0))};
    if (is_break_glass(r)) f.push_back("BREAK-GLASS");
    f.push_back(state);
    f.push_back(where_text(r));
    f.push_back(fmt::format("by {}", r.value("user", "")));
    f.push_back(fmt::format("for {}", format_duration(r.value("duration_s", std::int64_t(0)))));
    const std::size_t approvals = r.value("approvers", json::array()).size();
    if (state == "pending") {
        std::string a = fmt::format("{} of {} approvals", approvals, r.value("approvals_required", 1));
        if (approvals) a += fmt::format(" ({})", approvers_text(r));
        f.push_back(a);
        if (r.contains("expires_at"))
            f.push_back(fmt::format("undecided until {}", short_time(r.value("expires_at", ""))));
    } else {
        if (approvals) f.push_back(fmt::format("approved by {}", approvers_text(r)));
        std::string d = fmt::format("{} {} by {}", state, short_time(r.value("decided_at", "")),
                                    r.value("decided_by", ""));
        if (r.contains("decision_reason")) d += fmt::format(": {}", r["decision_reason"].get<std::string>());
        f.push_back(d);
        if (r.contains("grant_id")) f.push_back(fmt::format("grant {}", r.value("grant_id", 0)));
    }
    return wrap(f, 2) + why_block(r);
}

std::string grant_item(const json& g) {
    const std::string state = g.value("state", "");
    std::vector<std::string> f{fmt::format("grant {}", g.value("grant_id", 0))};
    if (is_break_glass(g)) f.push_back("BREAK-GLASS");
    f.push_back(state);
    f.push_back(where_text(g));
    // A local grant is held by its user; a remote one by its source, asked for by a user.
    f.push_back(fmt::format("{} {}", g.contains("src") ? "asked by" : "for", g.value("user", "")));
    if (state == "active")
        f.push_back(fmt::format("{} left (until {})",
                                format_duration(g.value("remaining_s", std::int64_t(0))),
                                short_time(g.value("expires_at", ""))));
    else
        f.push_back(
            fmt::format("ended {} by {}", short_time(g.value("ended_at", "")), g.value("ended_by", "")));
    f.push_back(is_break_glass(g) && g.value("approvers", json::array()).empty()
                    ? std::string("no approver")
                    : fmt::format("approved by {}", approvers_text(g)));
    f.push_back(fmt::format("request {}", g.value("request_id", 0)));
    return wrap(f, 2) + why_block(g);
}

// A titled section of list: "pending requests (2):" and its items; nothing when empty.
std::string section(const json& items, const std::string& title, std::string (*item)(const json&)) {
    if (!items.is_array() || items.empty()) return {};
    std::string s = fmt::format("{} ({}):\n", title, items.size());
    for (const auto& i : items) s += item(i);
    return s;
}

// Whether every item of `items` is in `state`.
bool all_in(const json& items, const char* state) {
    for (const auto& i : items)
        if (i.value("state", "") != state) return false;
    return true;
}

// After a section cut short by list's page size: how many more, and the
// command that shows the next page (a list of pages, not one long screen).
std::string more_line(const json& r, const char* section, const char* what, const char* flag) {
    const json none = json::object();
    const json& more = r.contains("more") && r["more"].is_object() ? r["more"] : none;
    const std::int64_t n = more.value(section, std::int64_t(0));
    if (n <= 0) return {};
    const json& next = r.contains("next_after") && r["next_after"].is_object() ? r["next_after"] : none;
    std::int64_t after = next.value(section, std::int64_t(0));
    // --all pages both sections with one --after: the later of the two
    // shows a few rows again rather than skip any.
    if (r.value("filter", "") == "all") {
        flag = "--all";
        for (const auto& [k, v] : next.items()) after = std::max(after, v.get<std::int64_t>());
    }
    std::string limit;
    if (r.contains("limit") && r["limit"].is_number_integer() && r["limit"].get<std::int64_t>() != 100)
        limit = fmt::format(" --limit {}", r["limit"].get<std::int64_t>());
    return fmt::format("  ... {} more {}: jitgate list {}{} --after {}\n", n, what, flag, limit, after);
}

std::string render_list(const json& r) {
    const json none = json::array();
    const json& requests = r.contains("requests") ? r["requests"] : none;
    const json& grants = r.contains("grants") ? r["grants"] : none;
    const json& glass = r.contains("break_glass") ? r["break_glass"] : none;
    const bool pending = all_in(requests, "pending"), active = all_in(grants, "active");
    std::string s = section(requests, pending ? "pending requests" : "requests", request_item);
    s += more_line(r, "requests", pending ? "pending requests" : "requests", "--pending");
    s += section(grants, active ? "active grants" : "grants", grant_item);
    s += more_line(r, "grants", active ? "active grants" : "grants", "--active");
    s += section(glass, "break-glass grants of the last 7 days, for review", grant_item);
    return s.empty() ? "nothing to show\n" : s;
}

// status: how many grants each grant map holds, and the policy's other
// number while pinned maps keep their size (an older daemon says neither).
std::string grant_capacity_line(const json& r) {
    if (!r.contains("max_grants")) return "";
    const auto has = r.value("max_grants", std::uint64_t(0));
    const auto want = r.value("max_grants_configured", has);
    std::string s =
        fmt::format("grant capacity: {} per grant map (local users, remote hosts, networks)", has);
    if (want != has)
        s += fmt::format("; [daemon] max_grants = {} takes effect after jitgated --uninstall and a new start",
                         want);
    return s + "\n";
}

// In a fleet, the nodes a decision is for: "targets (role=db): db-1, db-2".
std::string targets_line(const json& r) {
    const auto t = r.find("targets");
    if (t == r.end() || !t->is_array()) return {};
    std::string names;
    for (const auto& n : *t)
        if (n.is_string()) names += (names.empty() ? "" : ", ") + n.get<std::string>();
    const std::string on =
        r.contains("on") && r["on"].is_string() ? " (" + r["on"].get<std::string>() + ")" : "";
    return fmt::format("targets{}: {}\n", on, names.empty() ? "none" : names);
}

}  // namespace

std::string render_wait_for(const json& raw) {
    const json r = escape_strings(raw);
    std::string who;
    const json none = json::array();
    const json& el = r.contains("eligible_approvers") ? r["eligible_approvers"] : none;
    for (std::size_t i = 0; i < el.size(); ++i)
        who += (i == 0 ? "" : i + 1 == el.size() ? " or " : ", ") + el[i].get<std::string>();
    std::string s;
    if (!who.empty()) s += "by " + who;
    if (r.contains("expires_at"))
        s += (s.empty() ? "" : ", ") + fmt::format("until {}", r["expires_at"].get<std::string>());
    return s;
}

std::string render_waiting(const json& r, std::int64_t waited_s) {
    const auto id = r.value("request_id", std::int64_t(0));
    return fmt::format("waiting {} for a decision on request {}",
                       format_duration(std::max<std::int64_t>(waited_s, 0)), id);
}

std::string render_wait_state(const json& raw) {
    const json r = escape_strings(raw);
    const auto id = r.value("request_id", std::int64_t(0));
    const std::string state = r.value("state", "");
    if (state == "pending") {
        const std::size_t n = r.value("approvers", json::array()).size();
        std::string s =
            fmt::format("request {}: pending, {} of {} approvals", id, n, r.value("approvals_required", 1));
        if (n) s += fmt::format(" ({})", approvers_text(r));
        return s;
    }
    if (state == "granted") {
        const auto gid = r.value("grant_id", std::int64_t(0));
        const std::string gs = r.value("grant_state", "active");
        if (gs != "active")
            return fmt::format("request {}: granted, but grant {} is already {}", id, gid, gs);
        if (!r.contains("remaining_s"))
            return fmt::format("request {}: granted, grant {}, active until {}", id, gid,
                               r.value("expires_at", ""));
        return fmt::format("request {}: granted, grant {}, {} remaining until {}", id, gid,
                           format_duration(r.value("remaining_s", std::int64_t(0))),
                           r.value("expires_at", ""));
    }
    const std::string by = r.value("decided_by", "");
    const std::string why = r.value("decision_reason", "");
    if (state == "expired" && by == "request_ttl")
        return fmt::format("request {}: expired: nobody decided it before its request_ttl ran out", id);
    std::string s = fmt::format("request {}: {}", id, state);
    if (!by.empty()) s += fmt::format(" by {}", by);
    if (!why.empty()) s += fmt::format(": {}", why);
    return s;
}

std::string render_human(const std::string& op, const nlohmann::json& raw) {
    // Prometheus text has its own escapes (core/metrics.h), and names
    // nothing a user chose.
    if (op == op_name(Op::Metrics)) return render_prometheus(raw);
    // The fleet's replies name what etcd holds; they escape it themselves.
    if (op == op_name(Op::Nodes)) return render_nodes(raw);
    if (op == op_name(Op::PolicyPush)) return render_policy_push(raw);
    if (op == op_name(Op::PolicyShow)) return render_policy_show(raw);
    // Every string of the reply may be text someone chose (a reason, a
    // ticket, a process name, a user name): escaped once, here, before any
    // of it is laid out.
    const json r = escape_strings(raw);
    if (op == op_name(Op::Request) || op == op_name(Op::Approve) || op == op_name(Op::Deny) ||
        op == op_name(Op::Extend)) {
        std::string s = request_line(r) + "\n";
        const std::string st = r.value("state", "");
        if (st == "pending" && (op == op_name(Op::Request) || op == op_name(Op::Extend)))
            s += fmt::format("waiting for approval: an approver runs  jitgate approve {}\n",
                             r.value("request_id", 0));
        if (st == "granted")
            s += fmt::format(
                "granted: grant {} is active until {}{}\n", r.value("grant_id", 0), r.value("expires_at", ""),
                r.contains("src") ? fmt::format(" for connections from {}", r["src"].get<std::string>())
                                  : "");
        return s + targets_line(r);
    }
    if (op == op_name(Op::BreakGlass)) {
        if (r.value("state", "") != "granted") return request_line(r) + "\n";
        const std::string s = fmt::format(
            "BREAK-GLASS: {} granted to {} at once, without approval, until {} (grant {}, request {}); "
            "this is recorded in the audit log and listed for review\n",
            where_text(r), r.value("user", ""), r.value("expires_at", ""), r.value("grant_id", 0),
            r.value("request_id", 0));
        return s + targets_line(r);
    }
    if (op == op_name(Op::Revoke)) return grant_line(r) + "\n" + targets_line(r);
    if (op == op_name(Op::List)) return render_list(r);
    if (op == op_name(Op::Status)) {
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
                                       note.empty() ? "" : fmt::format(" ({})", note))
                         : fmt::format("  {:<12} NOT ATTACHED: {}\n", x.value("interface", ""), note);
            }
        }
        s += "protected ports:\n";
        for (auto& p : r["ports"]) {
            const std::string a = comma_list(p["approvers"]);
            s +=
                fmt::format("  {:<14} {}/{:<5} {:<8} max {:<6} approvers {} (need {})\n", p.value("name", ""),
                            p.value("port", 0), p.value("proto", ""), p.value("mode", ""),
                            p.value("max_duration", ""), a, p.value("approvals_required", 1));
        }
        s += fmt::format("active grants: {}\n", r["grants"].size());
        for (auto& g : r["grants"]) s += "  " + grant_line(g) + "\n";
        s += fmt::format("pending requests: {}\n", r.value("pending_requests", 0));
        s += grant_capacity_line(r);
        if (r.contains("recent_denials") && r["recent_denials"].is_array() && !r["recent_denials"].empty()) {
            s += "recent denials (newest first):\n";
            for (const auto& d : r["recent_denials"]) {
                const std::string who = d.contains("src")
                                            ? fmt::format("from {}", d.value("src", ""))
                                            : fmt::format("{}({})", d.value("user", ""), d.value("uid", 0));
                s += fmt::format("  {}  {}/{}  {}{}\n", d.value("at", ""), d.value("port", 0),
                                 d.value("proto", ""), who,
                                 d.contains("comm") ? fmt::format(" {}", d.value("comm", "")) : "");
                if (!d.value("to_ask", "").empty())
                    s += fmt::format("      to ask: {}\n", d.value("to_ask", ""));
            }
        }
        auto& c = r["counters"];
        s += fmt::format(
            "counters: allow {} deny {} would_deny {} egress_drop {} xdp_drop {} ingress_drop {} guard_drop "
            "{} "
            "events_lost {} bind_denied {}\n",
            c.value("allow", 0), c.value("deny", 0), c.value("would_deny", 0), c.value("egress_drop", 0),
            c.value("xdp_drop", 0), c.value("ingress_drop", 0), c.value("guard_drop", 0),
            c.value("events_lost", 0), c.value("bind_denied", 0));
        return s;
    }
    return json_text(r, 2) + "\n";
}

}  // namespace jg
