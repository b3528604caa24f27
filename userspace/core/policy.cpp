#include "core/policy.h"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "core/duration.h"
#include "core/metrics.h"
#include "core/nss_buffer.h"
#include "core/text.h"
#include "core/toml_checker.h"

namespace jg {

const PortPolicy* Policy::find(std::uint16_t port, Proto proto) const {
    for (const auto& p : ports)
        if (p.port == port && p.covers(proto)) return &p;
    return nullptr;
}

namespace {

using policy_detail::Checker;
using policy_detail::parse_fleet;
using policy_detail::parse_port_fleet;
using policy_detail::whole_in;
using policy_detail::zero_duration;

void parse_daemon(const toml::table& t, Checker& c, DaemonSettings& d) {
    c.only(t,
           {"cgroup", "bpffs", "socket", "state_dir", "audit_log", "xdp_interfaces", "auditors",
            "metrics_address", "max_pending_per_user", "max_pending_per_port", "request_rate", "retention",
            "min_free_mb", "max_grants"},
           "[daemon]");
    d.cgroup = c.str(t, "cgroup", "daemon");
    d.bpffs = c.str(t, "bpffs", "daemon");
    d.socket = c.str(t, "socket", "daemon");
    d.state_dir = c.str(t, "state_dir", "daemon");
    d.audit_log = c.str(t, "audit_log", "daemon");
    d.metrics_address = c.str(t, "metrics_address", "daemon");
    if (d.metrics_address)
        if (auto m = parse_metrics_address(*d.metrics_address); !m)
            c.fail(t.get("metrics_address"), Checker::line_of(t), "daemon.metrics_address: " + m.error());
    // Auditors see every audit record (everyone else: the records about them).
    std::set<std::string> distinct;
    for (const auto& a : c.strings(t, "auditors", "daemon")) {
        auto pr = c.principal(a, t.get("auditors"), Checker::line_of(t), "daemon.auditors");
        if (!pr) continue;
        if (!distinct.insert(pr->text()).second)
            c.fail(t.get("auditors"), Checker::line_of(t),
                   fmt::format("daemon.auditors: '{}' is listed twice", pr->text()));
        else
            d.auditors.push_back(*pr);
    }
    for (const auto& name : c.strings(t, "xdp_interfaces", "daemon")) {
        if (!valid_ifname(name))
            c.fail(t.get("xdp_interfaces"), Checker::line_of(t),
                   fmt::format("daemon.xdp_interfaces: '{}' is not an interface name", name));
        else if (name == "lo")
            c.fail(t.get("xdp_interfaces"), Checker::line_of(t),
                   "daemon.xdp_interfaces: lo carries local traffic only, which the local-user hooks decide; "
                   "remove it");
        else if (std::find(d.xdp_interfaces.begin(), d.xdp_interfaces.end(), name) == d.xdp_interfaces.end())
            d.xdp_interfaces.push_back(name);
    }
}

// allow_prefix = { ipv4 = 24, ipv6 = 64 }, each key optional.
void parse_allow_prefix(const toml::table& t, Checker& c, PortPolicy& p, const std::string& where) {
    const toml::node* n = t.get("allow_prefix");
    if (!n) return;
    const toml::table* at = n->as_table();
    if (!at) {
        c.fail(n, Checker::line_of(t),
               fmt::format("{}: allow_prefix must be a table such as {{ ipv4 = 24, ipv6 = 64 }}", where));
        return;
    }
    c.only(*at, {"ipv4", "ipv6"}, where + " allow_prefix");
    auto bits = [&](std::string_view key, int max) -> std::optional<int> {
        const toml::node* v = at->get(key);
        if (!v) return std::nullopt;
        auto i = whole_in(*v, 1, max);
        if (!i) {
            c.fail(v, Checker::line_of(*at),
                   fmt::format("{}: allow_prefix.{} must be a whole number from 1 to {}", where, key, max));
            return std::nullopt;
        }
        return static_cast<int>(*i);
    };
    p.allow_prefix_v4 = bits("ipv4", 32);
    p.allow_prefix_v6 = bits("ipv6", 128);
}

// break_glass_max = "15m" (the default, capped by max_duration; "0s" = off)
// and break_glass = ["alice", "@oncall"] (who may; absent = the port's approvers, [] = nobody).
// Needs p.max_duration_s parsed.
void parse_break_glass(const toml::table& t, Checker& c, PortPolicy& p, const std::string& where) {
    const int line = Checker::line_of(t);
    p.break_glass_max_s = std::min(kDefaultBreakGlassMaxSeconds, p.max_duration_s);
    if (auto d = c.duration(t, "break_glass_max", where, true)) {
        if (*d > p.max_duration_s)
            c.fail(t.get("break_glass_max"), line,
                   fmt::format("{}: break_glass_max is longer than the port's max_duration ({})", where,
                               format_duration(p.max_duration_s)));
        else
            p.break_glass_max_s = *d;
    }
    const toml::node* n = t.get("break_glass");
    if (!n) return;
    if (!n->is_array()) {
        c.fail(n, line,
               fmt::format("{}: break_glass must be a list of users and @groups, such as [\"alice\", "
                           "\"@oncall\"] ([] = nobody)",
                           where));
        return;
    }
    std::vector<Principal> who;
    std::set<std::string> distinct;
    for (auto& a : c.strings(t, "break_glass", where)) {
        auto pr = c.principal(a, n, line, where + " break_glass");
        if (!pr) continue;
        if (!distinct.insert(pr->text()).second)
            c.fail(n, line, fmt::format("{}: break_glass lists '{}' twice", where, pr->text()));
        else
            who.push_back(*pr);
    }
    p.break_glass = std::move(who);
}

// service_users = ["postgres", "@dba", "system"]: who may bind the port.
// Absent: "system" alone (root and the accounts below UID_MIN).
void parse_service_users(const toml::table& t, Checker& c, PortPolicy& p, const std::string& where) {
    const toml::node* n = t.get("service_users");
    if (!n) return;
    const int line = Checker::line_of(t);
    if (!n->is_array()) {
        c.fail(n, line,
               fmt::format("{}: service_users must be a list of users, @groups and \"system\", such as "
                           "[\"postgres\", \"system\"]",
                           where));
        return;
    }
    p.service_system = false;
    std::set<std::string> distinct;
    for (auto& a : c.strings(t, "service_users", where)) {
        if (!distinct.insert(a).second) {
            c.fail(n, line, fmt::format("{}: service_users lists '{}' twice", where, a));
            continue;
        }
        if (a == "system") {
            p.service_system = true;
            continue;
        }
        if (auto pr = c.principal(a, n, line, where + " service_users")) p.service_users.push_back(*pr);
    }
}

// proto, mode and on_expiry: the words that say what kind of port it is.
void parse_port_kind(const toml::table& t, Checker& c, PortPolicy& p, const std::string& where) {
    const int line = p.line;
    if (auto proto = c.str(t, "proto", where)) {
        if (*proto == "tcp") {
            p.tcp = true, p.udp = false;
        } else if (*proto == "udp") {
            p.tcp = false, p.udp = true;
        } else if (*proto == "both") {
            p.tcp = p.udp = true;
        } else {
            c.fail(t.get("proto"), line,
                   fmt::format("{}: proto must be \"tcp\", \"udp\" or \"both\"", where));
        }
    }
    if (auto mode = c.str(t, "mode", where)) {
        if (*mode == "audit")
            p.audit = true;
        else if (*mode != "enforce")
            c.fail(t.get("mode"), line, fmt::format("{}: mode must be \"enforce\" or \"audit\"", where));
    }
    if (auto oe = c.str(t, "on_expiry", where)) {
        if (*oe == "drain")
            p.drain = true;
        else if (*oe != "cut")
            c.fail(t.get("on_expiry"), line,
                   fmt::format("{}: on_expiry must be \"cut\" or \"drain\"", where));
    }
}

// Each approver once, and enough of them for approvals_required.
void check_approvers(const toml::table& t, Checker& c, const PortPolicy& p, const std::string& where) {
    const int line = p.line;
    bool any_group = false;
    std::set<std::string> distinct;
    for (auto& a : p.approvers) {
        any_group = any_group || a.is_group;
        if (!distinct.insert(a.text()).second)
            c.fail(t.get("approvers"), line,
                   fmt::format("{}: approver '{}' is listed twice", where, a.text()));
    }
    if (!any_group && p.approvals_required > static_cast<int>(distinct.size()) && !distinct.empty())
        c.fail(t.get("approvals_required"), line,
               fmt::format("{}: approvals_required is {} but only {} distinct approvers are listed", where,
                           p.approvals_required, distinct.size()));
}

// [[port.auto_approve]]: who is granted without an approver, for how long at most.
void parse_auto_approve(const toml::table& t, Checker& c, PortPolicy& p, const std::string& where) {
    const int line = p.line;
    if (const toml::node* n = t.get("auto_approve")) {
        const toml::array* arr = n->as_array();
        if (!arr) {
            c.fail(n, line, fmt::format("{}: auto_approve must be [[port.auto_approve]] tables", where));
        } else {
            for (const auto& e : *arr) {
                const toml::table* at = e.as_table();
                if (!at) {
                    c.fail(&e, line, fmt::format("{}: auto_approve entries must be tables", where));
                    continue;
                }
                const std::string aw = where + " auto_approve";
                c.only(*at, {"user", "group", "max_duration"}, "[[port.auto_approve]]");
                auto user = c.str(*at, "user", aw);
                auto group = c.str(*at, "group", aw);
                const int aline = Checker::line_of(*at);
                if (user.has_value() == group.has_value()) {
                    c.fail(&e, aline, fmt::format("{}: give exactly one of user or group", aw));
                    continue;
                }
                AutoApprove rule;
                auto pr = c.principal(user ? *user : "@" + *group, &e, aline, aw);
                if (!pr) continue;
                rule.who = *pr;
                rule.max_duration_s = c.duration(*at, "max_duration", aw).value_or(p.max_duration_s);
                if (rule.max_duration_s > p.max_duration_s)
                    c.fail(at->get("max_duration"), aline,
                           fmt::format("{}: max_duration is longer than the port's max_duration ({})", aw,
                                       format_duration(p.max_duration_s)));
                p.auto_approve.push_back(rule);
            }
        }
    }
}

void parse_port(const toml::table& t, Checker& c, PortPolicy& p) {
    const int line = Checker::line_of(t);
    p.line = line;
    c.only(t,
           {"name", "port", "proto", "mode", "max_duration", "approvers", "approvals_required",
            "self_approve", "require_reason", "request_ttl", "on_expiry", "auto_approve", "allow_prefix",
            "break_glass", "break_glass_max", "service_users", "hosts", "fleet_mode", "warn_before"},
           "[[port]]");
    const toml::node* pn = t.get("port");
    if (!pn) {
        c.fail(nullptr, line, "[[port]] needs a port number (port = 5432)");
    } else if (auto v = whole_in(*pn, 1, 65535); !v) {
        c.fail(pn, line, "port must be a whole number from 1 to 65535");
    } else {
        p.port = static_cast<std::uint16_t>(*v);
    }
    p.name = c.str(t, "name", "port").value_or(fmt::format("port-{}", p.port));
    // Names reach logs, records and terminals (and in a fleet come from etcd).
    if (p.name.empty() || p.name.size() > 64 || text_refusal("name", p.name)) {
        c.fail(t.get("name"), line, "[[port]] name must be 1-64 printable characters on one line");
        p.name = fmt::format("port-{}", p.port);
    }
    const std::string where = fmt::format("port '{}'", p.name);
    parse_port_kind(t, c, p, where);
    if (auto d = c.duration(t, "max_duration", where)) p.max_duration_s = *d;
    if (auto d = c.duration(t, "request_ttl", where)) p.request_ttl_s = *d;
    if (auto d = c.duration(t, "warn_before", where, true)) p.warn_before_s = *d;
    if (auto b = c.boolean(t, "self_approve", where)) p.self_approve = *b;
    if (auto b = c.boolean(t, "require_reason", where)) p.require_reason = *b;
    for (auto& a : c.strings(t, "approvers", where))
        if (auto pr = c.principal(a, t.get("approvers"), line, where + " approvers"))
            p.approvers.push_back(*pr);
    if (const toml::node* n = t.get("approvals_required")) {
        auto v = whole_in(*n, 1, 16);
        if (!v)
            c.fail(n, line, fmt::format("{}: approvals_required must be a whole number from 1 to 16", where));
        else
            p.approvals_required = static_cast<int>(*v);
    }
    parse_allow_prefix(t, c, p, where);
    parse_break_glass(t, c, p, where);
    parse_service_users(t, c, p, where);
    check_approvers(t, c, p, where);
    parse_auto_approve(t, c, p, where);
    parse_port_fleet(t, c, p, where);
    if (p.approvers.empty() && p.auto_approve.empty())
        c.fail(nullptr, line,
               fmt::format("{}: list at least one approver (approvers = [\"alice\", \"@dba\"])", where));
}

// The size of each grant map: an integer in bounds (a float or a string is
// refused, not rounded); below 16 nothing useful fits, above 2^24 the maps'
// kernel memory would be out of proportion to any policy.
void parse_max_grants(const toml::table& t, Checker& c, DaemonSettings& d) {
    const toml::node* n = t.get("max_grants");
    if (!n) return;
    if (auto v = whole_in(*n, kMinMaxGrants, kMaxMaxGrants))
        d.max_grants = static_cast<std::uint32_t>(*v);
    else
        c.fail(n, Checker::line_of(t),
               fmt::format("daemon.max_grants must be a whole number from {} to {} (grants each grant map "
                           "holds; default {})",
                           kMinMaxGrants, kMaxMaxGrants, kDefaultMaxGrants));
}

// The [daemon] keys that bound what one user can make jitgated store.
void parse_limits(const toml::table& t, Checker& c, RequestLimits& l) {
    auto count = [&](const char* key, int& out, std::int64_t lo, std::int64_t hi) {
        const toml::node* n = t.get(key);
        if (!n) return;
        if (auto v = whole_in(*n, lo, hi))
            out = static_cast<int>(*v);
        else
            c.fail(n, Checker::line_of(t),
                   fmt::format("daemon.{} must be a whole number from {} to {}", key, lo, hi));
    };
    count("max_pending_per_user", l.max_pending_per_user, 1, 100000);
    count("max_pending_per_port", l.max_pending_per_port, 1, 100000);
    if (auto r = c.str(t, "request_rate", "daemon")) {
        if (auto rate = parse_rate(*r))
            std::tie(l.rate_burst, l.rate_period_s) = *rate;
        else
            c.fail(t.get("request_rate"), Checker::line_of(t), "daemon.request_rate: " + rate.error());
    }
    if (auto keep = c.duration(t, "retention", "daemon", true)) {
        if (*keep != 0 && *keep < kMinRetentionSeconds)
            c.fail(t.get("retention"), Checker::line_of(t),
                   "daemon.retention must be at least 7d (break-glass grants stay listed for review for a "
                   "week), or \"0s\" to keep every row");
        else
            l.retention_s = *keep;
    }
    if (const toml::node* n = t.get("min_free_mb")) {
        if (auto v = whole_in(*n, 0, 1 << 20))
            l.min_free_mb = *v;
        else
            c.fail(n, Checker::line_of(t),
                   "daemon.min_free_mb must be a whole number of MiB from 0 (off) to 1048576");
    }
}

}  // namespace

bool valid_ifname(std::string_view name) {
    if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
    for (char c : name)
        if (c == '/' || c == ':' || static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
    return true;
}

PolicyLoad parse_policy(std::string_view text, std::string_view file) {
    PolicyLoad out;
    Checker c(file, out.errors);
    toml::table root;
    try {
        root = toml::parse(text, file);
    } catch (const toml::parse_error& e) {
        out.errors.push_back(fmt::format("{}:{}: {}", file, e.source().begin.line, e.description()));
        return out;
    }
    // [web] and [[notify]] are jitgate-web's and jitgate notify's (the same file serves
    // them, design.md §8-9): read there.
    c.only(root, {"daemon", "port", "fleet", "identity", "web", "notify"}, "the policy (top level)");
    if (const toml::node* id = root.get("identity")) {
        if (const toml::table* it = id->as_table())
            policy_detail::parse_identity(*it, c, out.policy.oidc);
        else
            c.fail(id, 1, "[identity] must be a table");
    }
    if (const toml::node* f = root.get("fleet")) {
        if (const toml::table* ft = f->as_table())
            parse_fleet(*ft, c, out.policy.fleet);
        else
            c.fail(f, 1, "[fleet] must be a table");
        if (out.policy.fleet.enabled() && root.get("port"))
            c.fail(root.get("port"), 1,
                   "in a fleet the protected ports come from the fleet policy: move the [[port]] tables to a "
                   "file of their own and store it with `jitgate policy push FILE`");
    }
    if (const toml::node* d = root.get("daemon")) {
        if (const toml::table* dt = d->as_table()) {
            parse_daemon(*dt, c, out.policy.daemon);
            parse_limits(*dt, c, out.policy.daemon.limits);
            parse_max_grants(*dt, c, out.policy.daemon);
        } else
            c.fail(d, 1, "[daemon] must be a table");
    }
    if (const toml::node* ports = root.get("port")) {
        const toml::array* arr = ports->as_array();
        if (!arr) {
            c.fail(ports, 1, "ports are declared as [[port]] tables");
        } else {
            for (const auto& e : *arr) {
                const toml::table* t = e.as_table();
                if (!t) {
                    c.fail(&e, 1, "ports are declared as [[port]] tables");
                    continue;
                }
                PortPolicy p;
                parse_port(*t, c, p);
                out.policy.ports.push_back(std::move(p));
            }
        }
    }
    // A (port, proto) may be claimed by one [[port]] only.
    std::set<std::pair<int, int>> seen;
    std::set<std::string> names;
    for (const auto& p : out.policy.ports) {
        if (p.port == 0) continue;
        for (Proto pr : {Proto::Tcp, Proto::Udp}) {
            if (!p.covers(pr)) continue;
            if (!seen.insert({p.port, int(pr)}).second)
                out.errors.push_back(
                    fmt::format("{}:{}: port {}/{} is declared twice", file, p.line, p.port, proto_name(pr)));
        }
        if (!names.insert(p.name).second)
            out.errors.push_back(fmt::format("{}:{}: port name '{}' is used twice", file, p.line, p.name));
    }
    return out;
}

PolicyLoad load_policy_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        PolicyLoad out;
        out.errors.push_back(fmt::format("{}: cannot read the policy file: {}", path, std::strerror(errno)));
        return out;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_policy(ss.str(), path);
}

bool host_knows(const Principal& who) {
    std::vector<char> buf;
    if (who.is_group) {
        group gr{}, *res = nullptr;
        return nss_lookup(buf, _SC_GETGR_R_SIZE_MAX,
                          [&](char* b, std::size_t n) {
                              return getgrnam_r(who.name.c_str(), &gr, b, n, &res);
                          }) == 0 &&
               res;
    }
    passwd pw{}, *res = nullptr;
    return nss_lookup(
               buf, _SC_GETPW_R_SIZE_MAX,
               [&](char* b, std::size_t n) { return getpwnam_r(who.name.c_str(), &pw, b, n, &res); }) == 0 &&
           res;
}

std::vector<std::string> unknown_principals(const Policy& p,
                                            const std::function<bool(const Principal&)>& exists) {
    std::vector<std::string> out;
    auto check = [&](const std::string& where, const char* role, const Principal& who) {
        if (exists(who)) return;
        out.push_back(
            fmt::format("{}: {} '{}' is not a {} on this host; it counts for nothing until it exists", where,
                        role, who.text(), who.is_group ? "group" : "user"));
    };
    for (const auto& a : p.daemon.auditors) check("[daemon]", "auditor", a);
    for (const auto& pp : p.ports) {
        const std::string where = fmt::format("port '{}' (line {})", pp.name, pp.line);
        for (const auto& a : pp.approvers) check(where, "approver", a);
        for (const auto& a : pp.auto_approve) check(where, "auto_approve", a.who);
        if (pp.break_glass)
            for (const auto& a : *pp.break_glass) check(where, "break_glass", a);
        for (const auto& a : pp.service_users) check(where, "service user", a);
    }
    return out;
}

}  // namespace jg
