#include "cli/audit_render.h"

#include <fmt/format.h>

#include <set>

#include "core/duration.h"
#include "core/text.h"

namespace jg {

namespace {

// `s` safe to print (core/text.h escape_terminal, quotes escaped too);
// `quote` is set when the value needs quotes to read as one (a space, an
// escape, empty).
std::string escaped(std::string_view s, bool& quote) {
    std::string out = escape_terminal(s, true);
    quote = quote || s.empty() || out != s || s.find(' ') != std::string_view::npos;
    return out;
}

std::string safe_text(std::string_view s) {
    bool quote = false;
    std::string e = escaped(s, quote);
    return quote ? "\"" + e + "\"" : e;
}

std::string value_text(const json& v) {
    if (v.is_string()) return safe_text(v.get_ref<const std::string&>());
    if (v.is_array()) {
        std::string joined;
        for (const auto& e : v) {
            if (!joined.empty()) joined += ',';
            joined +=
                e.is_string() ? e.get<std::string>() : e.dump(-1, ' ', false, json::error_handler_t::replace);
        }
        return safe_text(joined);
    }
    return safe_text(v.dump(-1, ' ', false, json::error_handler_t::replace));
}

}  // namespace

std::string printable(std::string_view text) {
    bool quote = false;
    return escaped(text, quote);
}

std::string render_event_human(const json& r) {
    if (!r.is_object()) return value_text(r);
    std::set<std::string, std::less<>> shown = {"ts", "seq", "type", "prev_hash", "hash"};
    std::string ts = r.contains("ts") && r["ts"].is_string() ? r["ts"].get<std::string>() : "-";
    if (ts.size() > 10 && ts[10] == 'T') ts[10] = ' ';
    bool unquoted = false;
    std::string out = escaped(ts, unquoted);
    out += " #";
    out += r.contains("seq") && r["seq"].is_number_integer() ? r["seq"].dump() : "?";
    out += " ";
    out += r.contains("type") ? value_text(r["type"]) : "?";

    // An empty list (no approvers yet, or none: break-glass) says nothing.
    auto has = [&](const char* k) {
        return r.contains(k) && !shown.count(k) && !(r[k].is_array() && r[k].empty());
    };
    auto field = [&](const char* key, const char* label) {
        if (!has(key)) return;
        out += fmt::format(" {}={}", label, value_text(r[key]));
        shown.insert(key);
    };
    field("grant_id", "grant");
    field("request_id", "request");
    if (has("user")) {
        out += " user=" + value_text(r["user"]);
        if (r.contains("uid")) out += "(" + value_text(r["uid"]) + ")";
        shown.insert({"user", "uid"});
    }
    field("uid", "uid");
    if (has("requester") && !(r.contains("user") && r["requester"] == r["user"]))
        field("requester", "requester");
    shown.insert("requester");
    field("principal", "principal");
    field("src", "src");
    field("sport", "sport");
    field("dst", "dst");
    if (has("port")) {
        out += " port=" + value_text(r["port"]);
        if (r.contains("proto")) out += "/" + value_text(r["proto"]);
        shown.insert({"port", "proto"});
    }
    field("proto", "proto");
    field("hook", "hook");
    field("pid", "pid");
    field("comm", "comm");
    field("cgroup_id", "cgroup_id");
    field("suppressed", "suppressed");
    field("count", "count");
    if (has("duration_s") && r["duration_s"].is_number_integer()) {
        out += " for=" + format_duration(r["duration_s"].get<std::int64_t>());
        shown.insert("duration_s");
    }
    field("duration_s", "duration_s");
    field("approvers", "by");
    field("reason", "reason");
    field("ticket", "ticket");
    field("expires_at", "expires");
    for (const auto& [k, v] : r.items()) {
        if (shown.count(k) || (v.is_array() && v.empty())) continue;
        bool q = false;
        out += fmt::format(" {}={}", escaped(k, q), value_text(v));
    }
    return out;
}

}  // namespace jg
