#include "core/audit_query.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/clock.h"
#include "core/duration.h"

namespace jg {

const std::vector<std::string>& audit_types() {
    static const std::vector<std::string> types = {
        "deny", "would_deny", "allow", "request", "approve", "reject", "grant", "revoke", "expire",
        "break_glass", "events_lost", "tamper_detected", "policy_reload", "daemon_start", "daemon_stop",
        "bind_denied", "approval_lapsed",
        // design.md §9
        "expiry_warning", "extend", "notify_failed"};
    return types;
}

std::string audit_types_text() {
    std::string all;
    for (const auto& k : audit_types()) all += (all.empty() ? "" : ", ") + k;
    return all;
}

bool is_audit_type(std::string_view type) {
    const auto& t = audit_types();
    return std::find(t.begin(), t.end(), type) != t.end();
}

namespace {

bool string_is(const json& r, const char* key, std::string_view want) {
    auto it = r.find(key);
    return it != r.end() && it->is_string() && it->get_ref<const std::string&>() == want;
}

std::optional<std::uint64_t> decimal(std::string_view s) {
    if (s.empty() || s.size() > 10) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + std::uint64_t(c - '0');
    }
    return v;
}

bool uid_is(const json& r, std::uint64_t uid) {
    auto it = r.find("uid");
    // Built in C++ a uid may be a signed number; parsed from a line, an unsigned one.
    return it != r.end() && it->is_number_integer() && it->get<std::int64_t>() >= 0 &&
           it->get<std::uint64_t>() == uid;
}

}  // namespace

bool matches(const AuditFilter& f, const json& r) {
    if (!r.is_object()) return false;
    if (!f.types.empty()) {
        auto t = r.find("type");
        if (t == r.end() || !t->is_string() ||
            std::find(f.types.begin(), f.types.end(), t->get_ref<const std::string&>()) == f.types.end())
            return false;
    }
    if (f.port) {
        auto p = r.find("port");
        if (p == r.end() || !p->is_number_integer() || p->get<std::int64_t>() != *f.port) return false;
    }
    if (f.user) {
        const auto uid = decimal(*f.user);
        if (!string_is(r, "user", *f.user) && !string_is(r, "requester", *f.user) &&
            !(uid && uid_is(r, *uid)))
            return false;
    }
    if (f.since_us) {
        auto ts = r.find("ts");
        if (ts == r.end() || !ts->is_string()) return false;
        auto t = parse_rfc3339_us(ts->get_ref<const std::string&>());
        if (!t || *t < *f.since_us) return false;
    }
    return true;
}

Result<AuditFilter> audit_filter_from_args(const json& args) {
    AuditFilter f;
    if (auto t = args.find("types"); t != args.end()) {
        if (!t->is_array()) return err("types must be a list of record types");
        for (const auto& v : *t) {
            if (!v.is_string() || !is_audit_type(v.get_ref<const std::string&>()))
                return err(fmt::format("unknown audit record type {}; the types are: {}",
                                       v.dump(-1, ' ', false, json::error_handler_t::replace),
                                       audit_types_text()));
            f.types.push_back(v.get<std::string>());
        }
    }
    if (auto p = args.find("port"); p != args.end()) {
        if (!p->is_number_integer() || p->get<std::int64_t>() < 1 || p->get<std::int64_t>() > 65535)
            return err("port must be a whole number from 1 to 65535");
        f.port = p->get<int>();
    }
    if (auto u = args.find("user"); u != args.end()) {
        if (!u->is_string() || u->get_ref<const std::string&>().empty())
            return err("user must be a user name or a decimal uid");
        f.user = u->get<std::string>();
    }
    if (auto s = args.find("since_us"); s != args.end()) {
        if (!s->is_number_integer()) return err("since_us must be a whole number of microseconds");
        f.since_us = s->get<std::int64_t>();
    }
    return f;
}

bool belongs_to(const json& r, std::uint32_t uid, const std::string& name) {
    if (!r.is_object()) return false;
    if (uid_is(r, uid)) return true;
    if (name.empty()) return false;
    if (string_is(r, "user", name) || string_is(r, "requester", name)) return true;
    auto a = r.find("approvers");
    if (a == r.end() || !a->is_array()) return false;
    return std::any_of(a->begin(), a->end(), [&](const json& v) {
        return v.is_string() && v.get_ref<const std::string&>() == name;
    });
}

Result<std::int64_t> parse_since(std::string_view text, std::int64_t now_us) {
    if (auto t = parse_rfc3339_us(text)) return *t;
    if (auto d = parse_duration(text)) return now_us - *d * 1000000;
    // Say what went wrong with the form the text was meant to have.
    if (text.size() > 4 && text[4] == '-') return parse_rfc3339_us(text);
    const bool duration_like = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= '0' && c <= '9') || c == 'd' || c == 'h' || c == 'm' || c == 's';
    });
    if (duration_like) return parse_duration(text);
    return err(fmt::format(
        "invalid time '{}': give an RFC 3339 time such as 2026-11-21T09:56:00Z, or how long ago, such "
        "as 10m, 2h or 1h30m",
        text));
}

std::string access_hint(const json& r) {
    if (!r.is_object() || r.value("type", "") != "deny") return {};
    const auto port = r.find("port");
    const auto proto = r.find("proto");
    if (port == r.end() || !port->is_number_integer() || proto == r.end() || !proto->is_string()) return {};
    const std::int64_t number = port->get<std::int64_t>();
    if (number < 1 || number > 65535) return {};
    const std::string p = proto->get<std::string>();
    if (p != "tcp" && p != "udp") return {};
    std::string from;
    if (auto src = r.find("src"); src != r.end() && src->is_string()) {
        const std::string a = src->get<std::string>();
        if (a.empty() || a.find_first_not_of("0123456789abcdefABCDEF.:/") != std::string::npos) return {};
        from = " --from " + a;
    }
    return fmt::format("jitgate request {}/{}{} --for 30m --reason WHY", number, p, from);
}

}  // namespace jg
