#include "core/protocol.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace jg {

int exit_code_for(std::string_view c) {
    if (c == code::kInvalid) return 2;
    if (c == code::kRefused || c == code::kForbidden || c == code::kAuthFailed) return 3;
    if (c == code::kUnreachable) return 4;
    return 1;
}

namespace {

using T = ArgType;

// A whole number that fits in std::int64_t.
bool is_int64(const json& v) {
    return v.is_number_integer() &&
           !(v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(INT64_MAX));
}

bool type_ok(const json& v, T t) {
    switch (t) {
        case T::Int: return is_int64(v);
        case T::Str: return v.is_string();
        case T::Bool: return v.is_boolean();
        case T::StrList:
            return v.is_array() &&
                   std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); });
    }
    return false;
}

const char* type_name(T t) {
    switch (t) {
        case T::Int: return "a whole number";
        case T::Str: return "a string";
        case T::Bool: return "true or false";
        case T::StrList: return "a list of strings";
    }
    return "?";
}

}  // namespace

json parse_json_bounded(std::string_view text, bool* too_deep) {
    bool deep = false;
    json j = json::parse(
        text.begin(), text.end(),
        [&deep](int depth, json::parse_event_t, json&) {
            deep = deep || depth > kMaxJsonDepth;
            return !deep;
        },
        false);
    if (too_deep) *too_deep = deep;
    return deep ? json(json::value_t::discarded) : j;
}

Result<WireRequest> parse_request(std::string_view line, WireError* why) {
    auto fail = [&](std::int64_t id, std::string msg) -> Result<WireRequest> {
        if (why) *why = WireError{id, msg};
        return err(std::move(msg));
    };
    if (line.size() > kMaxMessageBytes)
        return fail(0, fmt::format("message is larger than {} bytes", kMaxMessageBytes));
    bool too_deep = false;
    const json j = parse_json_bounded(line, &too_deep);
    if (too_deep) return fail(0, fmt::format("message nests deeper than {} levels", kMaxJsonDepth));
    if (j.is_discarded()) return fail(0, "message is not valid JSON");
    if (!j.is_object()) return fail(0, "message must be a JSON object");
    std::int64_t id = 0;
    if (auto it = j.find("id"); it != j.end()) {
        if (!is_int64(*it)) return fail(0, "\"id\" must be a whole number that fits in 64 bits");
        id = it->get<std::int64_t>();
    }
    for (auto& [k, v] : j.items())
        if (k != "id" && k != "op" && k != "args" && k != "token")
            return fail(id, fmt::format("unknown field \"{}\"", k));
    auto op = j.find("op");
    if (op == j.end() || !op->is_string()) return fail(id, "\"op\" must name an operation");
    const Operation* spec = find_operation(op->get<std::string>());
    if (!spec) return fail(id, fmt::format("unknown operation \"{}\"", op->get<std::string>()));
    WireRequest r;
    r.id = id;
    r.op = spec->name;
    r.kind = spec->op;
    if (auto t = j.find("token"); t != j.end()) {
        if (!t->is_string() || t->get_ref<const std::string&>().empty())
            return fail(id, "\"token\" must be an ID token (a non-empty string)");
        if (t->get_ref<const std::string&>().size() > kMaxTokenBytes)
            return fail(id, fmt::format("\"token\" is longer than {} bytes", kMaxTokenBytes));
        r.token = t->get<std::string>();
    }
    if (auto a = j.find("args"); a != j.end()) {
        if (!a->is_object()) return fail(id, "\"args\" must be a JSON object");
        r.args = *a;
    }
    auto arg_spec = [&](const std::string& k) -> const ArgSpec* {
        for (const auto& a : spec->args)
            if (k == a.name) return &a;
        return nullptr;
    };
    for (auto& [k, v] : r.args.items()) {
        const ArgSpec* arg = arg_spec(k);
        if (!arg) return fail(id, fmt::format("{}: unknown argument \"{}\"", r.op, k));
        if (!type_ok(v, arg->type))
            return fail(id, fmt::format("{}: argument \"{}\" must be {}", r.op, k, type_name(arg->type)));
    }
    // The first missing argument by name, as the message has always named it.
    const ArgSpec* missing = nullptr;
    for (const auto& a : spec->args)
        if (a.required && !r.args.contains(a.name) && (!missing || std::string_view(a.name) < missing->name))
            missing = &a;
    if (missing) return fail(id, fmt::format("{}: argument \"{}\" is required", r.op, missing->name));
    return r;
}

std::string reply_ok(std::int64_t id, const json& result) {
    return json{{"id", id}, {"ok", true}, {"result", result}}.dump(-1, ' ', false,
                                                                   json::error_handler_t::replace) +
           "\n";
}

std::string reply_error(std::int64_t id, std::string_view c, std::string_view message) {
    return json{{"id", id},
                {"ok", false},
                {"error", {{"code", std::string(c)}, {"message", std::string(message)}}}}
               .dump(-1, ' ', false, json::error_handler_t::replace) +
           "\n";
}

std::string reply_event(std::int64_t id, const json& record) {
    return json{{"id", id}, {"ok", true}, {"event", record}}.dump(-1, ' ', false,
                                                                  json::error_handler_t::replace) +
           "\n";
}

std::string reply_dropped(std::int64_t id, std::uint64_t n) {
    return json{{"id", id}, {"ok", true}, {"dropped", n}}.dump() + "\n";
}

}  // namespace jg
