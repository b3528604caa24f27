#include "web/api_routes.h"

#include <fmt/format.h>

#include <charconv>
#include <optional>

#include "core/duration.h"
#include "core/protocol.h"

namespace jg::web {

namespace {

ApiError bad(std::string message) { return ApiError{400, code::kInvalid, std::move(message)}; }

std::optional<std::int64_t> parse_id(std::string_view s) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v <= 0) return std::nullopt;
    return v;
}

// "/api/v1/requests/12/approve" -> {"requests", "12", "approve"}.
std::vector<std::string_view> segments(std::string_view path) {
    std::vector<std::string_view> out;
    constexpr std::string_view kPrefix = "/api/v1/";
    if (path.substr(0, kPrefix.size()) != kPrefix) return out;
    path.remove_prefix(kPrefix.size());
    while (!path.empty()) {
        auto slash = path.find('/');
        out.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return out;
}

std::variant<json, ApiError> body_object(std::string_view body) {
    if (body.size() > kMaxApiBodyBytes)
        return ApiError{413, code::kInvalid,
                        fmt::format("the body must be at most {} bytes", kMaxApiBodyBytes)};
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return json::object();
    json j = parse_json_bounded(body);
    if (j.is_discarded() || !j.is_object()) return bad("the body must be a JSON object");
    return j;
}

// "from_me": true (the address this server saw) into "from"; err when both are given.
std::optional<ApiError> fill_from_me(json& args, const std::string& client) {
    auto f = args.find("from_me");
    if (f == args.end()) return std::nullopt;
    if (!f->is_boolean()) return bad("\"from_me\" must be true or false");
    if (args.contains("from")) return bad("give \"from\" or \"from_me\", not both");
    if (f->get<bool>()) args["from"] = client;
    args.erase("from_me");
    return std::nullopt;
}

// POST /api/v1/requests: the socket's request arguments, with "from_me"
// (the address this server saw) and "duration" ("15m") as conveniences.
std::variant<ApiCall, ApiError> new_request(json body, const std::string& client) {
    if (auto d = body.find("duration"); d != body.end()) {
        if (!d->is_string()) return bad("\"duration\" must be a string such as \"15m\"");
        auto secs = parse_duration(d->get<std::string>());
        if (!secs) return bad(secs.error());
        body["duration_s"] = *secs;
        body.erase("duration");
    }
    if (auto e = fill_from_me(body, client)) return *e;
    if (!body.contains("proto")) body["proto"] = "tcp";
    return ApiCall{"request", std::move(body)};
}

// GET /api/v1/audit?type=T&user=U&port=P&limit=N&since_us=T
std::variant<ApiCall, ApiError> audit_call(const std::map<std::string, std::string>& q) {
    json args = {{"limit", 100}};
    for (const auto& [k, v] : q) {
        if (k == "type")
            args["types"] = json::array({v});
        else if (k == "user")
            args["user"] = v;
        else if (k == "port" || k == "limit" || k == "since_us") {
            std::int64_t n = 0;
            auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc() || p != v.data() + v.size())
                return bad(fmt::format("{} must be a number", k));
            args[k] = n;
        } else {
            return bad(fmt::format("unknown query parameter \"{}\"", k));
        }
    }
    return ApiCall{"audit", args};
}

}  // namespace

std::variant<ApiCall, ApiError> route_api(const ApiInput& in) {
    static const std::map<std::string, std::string> kNoQuery;
    const auto& q = in.query ? *in.query : kNoQuery;
    const auto seg = segments(in.path);
    const bool get = in.method == "GET", post = in.method == "POST";
    auto body = [&]() { return body_object(in.body); };
    if (seg.size() == 1 && get && (seg[0] == "requests" || seg[0] == "grants")) {
        std::string filter = seg[0] == "requests" ? "pending" : "active";
        if (auto f = q.find("filter"); f != q.end()) filter = f->second;
        return ApiCall{"list", {{"filter", filter}}};
    }
    if (seg.size() == 1 && get && seg[0] == "nodes") return ApiCall{"nodes", json::object()};
    if (seg.size() == 1 && get && seg[0] == "audit") return audit_call(q);
    if (seg.size() == 1 && post && seg[0] == "requests") {
        auto b = body();
        if (auto* e = std::get_if<ApiError>(&b)) return *e;
        return new_request(std::get<json>(std::move(b)), in.client);
    }
    if (seg.size() == 3 && post) {
        auto id = parse_id(seg[1]);
        const bool verb = (seg[0] == "requests" && (seg[2] == "approve" || seg[2] == "deny")) ||
                          (seg[0] == "grants" && seg[2] == "revoke");
        if (verb && !id) return bad("the id in the path must be a positive whole number");
        if (verb) {
            auto b = body();
            if (auto* e = std::get_if<ApiError>(&b)) return *e;
            json args = std::get<json>(std::move(b));
            args["id"] = *id;
            return ApiCall{std::string(seg[2]), std::move(args)};
        }
    }
    if (!get && !post) return ApiError{405, code::kInvalid, "the API takes GET and POST only"};
    return ApiError{404, code::kNotFound, fmt::format("there is no API endpoint {} {}", in.method, in.path)};
}

std::variant<ApiCall, ApiError> route_op(std::string_view body, const std::string& client) {
    auto b = body_object(body);
    if (auto* e = std::get_if<ApiError>(&b)) return *e;
    json& j = std::get<json>(b);
    for (const auto& [k, v] : j.items())
        if (k != "op" && k != "args")
            return bad(k == "token" ? "the token goes in the Authorization header, not the body"
                                    : fmt::format("the body holds \"op\" and \"args\" only, not \"{}\"", k));
    auto op = j.find("op");
    if (op == j.end() || !op->is_string() || op->get<std::string>().empty())
        return bad("the body needs \"op\", the name of a jitgated operation");
    ApiCall call{op->get<std::string>(), j.contains("args") ? j["args"] : json::object()};
    if (!call.args.is_object()) return bad("\"args\" must be a JSON object");
    // The notifier's own operation: a record written by the companion on the
    // host, never by a caller from anywhere with a token.
    if (call.op == "notify_failed")
        return ApiError{
            403, code::kForbidden,
            "notify_failed is jitgate notify's own operation, on the host: it is not served over HTTP"};
    if (auto f = call.args.find("follow"); call.op == "audit" && f != call.args.end() && *f == true)
        return bad("audit --follow is not served over HTTP: run it on the host, or leave out --follow");
    if (call.op == "request")
        if (auto e = fill_from_me(call.args, client)) return *e;
    return call;
}

int status_for_reply(const json& reply) {
    if (reply.value("ok", false)) return 200;
    const auto e = reply.find("error");
    const std::string c = e != reply.end() && e->is_object() ? e->value("code", "") : "";
    if (c == "unauthenticated" || c == "auth_failed" || c == "invalid_token") return 401;
    if (c == code::kForbidden || c == code::kRefused) return 403;
    if (c == code::kInvalid) return 400;
    if (c == code::kNotFound) return 404;
    if (c == code::kConflict) return 409;
    if (c == code::kUnreachable || c == code::kFleetDown) return 503;
    return 500;
}

}  // namespace jg::web
