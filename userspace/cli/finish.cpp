// The sub-commands' inputs checked and turned into the operation's
// arguments (finish), before anything is sent: every refusal is one
// sentence naming the flag.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "cli/app.h"
#include "cli/token_store.h"
#include "core/audit.h"
#include "core/clock.h"
#include "core/duration.h"
#include "core/keys.h"
#include "core/operations.h"
#include "core/policy.h"
#include "core/protocol.h"
#include "core/selector.h"
#include "core/text.h"

namespace jg {

namespace {

// A whole number from lo to hi, or nothing.
std::optional<std::int64_t> number_in(const std::string& text, std::int64_t lo, std::int64_t hi) {
    if (text.empty() || text.size() > 9) return std::nullopt;
    std::int64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    if (v < lo || v > hi) return std::nullopt;
    return v;
}

std::string finish_audit(CliState& s) {
    std::vector<std::string> types;
    for (const auto& given : s.types) {
        std::size_t start = 0;
        for (;;) {
            const std::size_t comma = given.find(',', start);
            std::string t =
                given.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            t.erase(0, t.find_first_not_of(' '));
            t.erase(t.find_last_not_of(' ') + 1);
            if (!is_audit_type(t))
                return t.empty() ? fmt::format("--type '{}' names no type; the types are: {}", given,
                                               audit_types_text())
                                 : fmt::format("unknown audit record type '{}'; the types are: {}", t,
                                               audit_types_text());
            if (std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
    }
    if (s.follow) s.args["follow"] = true;
    if (s.since) {
        auto t = parse_since(*s.since, s.now_us ? s.now_us : wall_us());
        if (!t) return t.error();
        s.args["since_us"] = *t;
    }
    if (!types.empty()) s.args["types"] = types;
    if (s.audit_port) {
        auto p = number_in(*s.audit_port, 1, 65535);
        if (!p) return fmt::format("invalid --port '{}': give a port number from 1 to 65535", *s.audit_port);
        s.args["port"] = *p;
    }
    if (s.user) {
        if (s.user->empty()) return "--user is empty: give a user name or a uid";
        if (s.user->size() > 256) return "--user is longer than 256 bytes";
        s.args["user"] = *s.user;
    }
    // Past records: 50 unless told; a follower gets none unless it asks.
    if (s.limit) {
        auto n = number_in(*s.limit, 1, 10000);
        if (!n) return fmt::format("invalid --limit '{}': give a number from 1 to 10000", *s.limit);
        s.args["limit"] = *n;
    } else if (!s.follow || s.since) {
        s.args["limit"] = 50;
    }
    return {};
}

// PORT[/PROTO] --for DUR (and the length of --reason) into s.args: port, proto, duration_s.
std::string finish_port_duration(CliState& s) {
    auto spec = parse_port_spec(s.port_spec);
    if (!spec) return spec.error();
    auto d = parse_duration(s.duration);
    if (!d) return d.error();
    if (s.reason.size() > kMaxReasonBytes)
        return fmt::format("--reason is longer than {} bytes", kMaxReasonBytes);
    s.args = {{"port", spec->port}, {"proto", std::string(proto_name(spec->proto))}, {"duration_s", *d}};
    return {};
}

// --on SELECTOR into s.args: checked here with the daemon's own parser,
// so a typo is a usage error before anything is sent.
std::string finish_on(CliState& s) {
    if (!s.on) return {};
    auto sel = parse_selector(*s.on);
    if (!sel) {
        // parse_selector quotes what it was given escaped, and fail()
        // escapes the whole sentence again: text that escaping changes
        // gets a sentence that does not quote it.
        if (escape_terminal(*s.on) != *s.on)
            return "--on holds a control character, a backslash or bytes that are not UTF-8: write a node "
                   "name or labels as key=value[,key=value]";
        return sel.error();
    }
    s.args["on"] = *s.on;
    return {};
}

// --timeout DUR (only with --wait) into s.wait_timeout_ms.
std::string finish_timeout(CliState& s) {
    if (!s.timeout) return {};
    if (!s.wait) return "--timeout goes with --wait: it says how long to wait for the target nodes";
    auto d = parse_duration(*s.timeout);
    if (!d) return d.error();
    s.wait_timeout_ms = *d * 1000;
    return {};
}

}  // namespace

namespace {

// --web URL: checked, and refused for the commands that work on this host's
// files or stream without end.
std::string finish_web(const CliState& s) {
    if (s.web.empty()) return {};
    if (auto u = normalise_web_url(s.web); !u) return u.error();
    if (s.op == "notify" || s.op == "audit-verify")
        return fmt::format("jitgate {} works on this host's files; leave out --web",
                           s.op == "notify" ? "notify" : "audit verify");
    if (s.op == op_name(Op::Audit) && s.follow)
        return "audit --follow is not served over --web (a stream without end); run it on the host, or leave "
               "out --follow";
    return {};
}

}  // namespace

std::string finish(CliState& s) {
    s.args = nlohmann::json::object();
    if (auto e = finish_web(s); !e.empty()) return e;
    if (s.op == op_name(Op::Request) || s.op == "run") {
        if (auto e = finish_port_duration(s); !e.empty()) return e;
        if (s.op == "run" && (s.command.empty() || s.command.front().empty()))
            return "run needs a command after --, e.g. jitgate run 5432 --for 30m --reason why -- psql";
        if (s.ticket.size() > kMaxTicketBytes)
            return fmt::format("--ticket is longer than {} bytes", kMaxTicketBytes);
        if (!s.reason.empty()) s.args["reason"] = s.reason;
        if (!s.ticket.empty()) s.args["ticket"] = s.ticket;
        if (s.from) {
            auto src = parse_source(*s.from);
            if (!src) return src.error();
            s.args["from"] = format_source(*src);
        }
        if (s.from_me && s.web.empty())
            return "--from-me goes with --web URL (jitgate-web fills in the address it sees); on this host "
                   "give --from ADDR";
        if (s.from_me) s.args["from_me"] = true;
        if (auto e = finish_on(s); !e.empty()) return e;
        if (auto e = finish_timeout(s); !e.empty()) return e;
    } else if (s.op == op_name(Op::BreakGlass)) {
        if (auto e = finish_port_duration(s); !e.empty()) return e;
        if (s.reason.find_first_not_of(' ') == std::string::npos)
            return "--reason must say why: break-glass is reviewed after the fact";
        s.args["reason"] = s.reason;
        if (auto e = finish_on(s); !e.empty()) return e;
    } else if (s.op == op_name(Op::Approve)) {
        if (s.id <= 0) return "ID must be a positive request id";
        s.args = {{"id", s.id}};
        if (!s.approve_for.empty()) {
            auto d = parse_duration(s.approve_for);
            if (!d) return d.error();
            s.args["duration_s"] = *d;
        }
        if (auto e = finish_timeout(s); !e.empty()) return e;
    } else if (s.op == op_name(Op::Extend)) {
        if (s.id <= 0) return "ID must be a positive grant or request id";
        auto d = parse_duration(s.duration);
        if (!d) return d.error();
        if (s.reason.size() > kMaxReasonBytes)
            return fmt::format("--reason is longer than {} bytes", kMaxReasonBytes);
        s.args = {{"id", s.id}, {"duration_s", *d}};
        if (!s.reason.empty()) s.args["reason"] = s.reason;
    } else if (s.op == op_name(Op::Deny) || s.op == op_name(Op::Revoke)) {
        if (s.id <= 0) return "ID must be a positive id";
        s.args = {{"id", s.id}};
        if (s.op == op_name(Op::Deny) && !s.reason.empty()) s.args["reason"] = s.reason;
        if (auto e = finish_timeout(s); !e.empty()) return e;
    } else if (s.op == op_name(Op::Audit)) {
        return finish_audit(s);
    } else if (s.op == "audit-verify") {
        if (s.follow || s.since || !s.types.empty() || s.audit_port || s.user || s.limit)
            return "audit verify takes only FILE arguments; --follow, --since, --type, --port, --user and "
                   "--limit belong to jitgate audit";
        if (std::count(s.files.begin(), s.files.end(), "-") > 1)
            return "standard input (-) can be read only once";
        if (s.fleet && !s.files.empty())
            return "audit verify --fleet checks the heads the nodes published in etcd and takes no FILE; "
                   "leave the files out, or --fleet";
    } else if (s.op == op_name(Op::List)) {
        s.args = {{"filter", s.pending ? "pending" : s.active ? "active" : s.all ? "all" : "default"}};
        if (s.list_limit && (*s.list_limit < 1 || *s.list_limit > 1000))
            return "--limit must be from 1 to 1000";
        if (s.list_after && *s.list_after < 1)
            return "--after must be a request or grant id (a positive number)";
        if (s.list_limit) s.args["limit"] = *s.list_limit;
        if (s.list_after) s.args["after"] = *s.list_after;
    }
    return {};
}

std::optional<std::string> free_text_refusal(const CliState& s) {
    if (auto why = text_refusal("--reason", s.reason)) return why;
    if (auto why = text_refusal("--ticket", s.ticket)) return why;
    if (s.user)
        if (auto why = text_refusal("--user", *s.user)) return why;
    return std::nullopt;
}

}  // namespace jg
