#include <fmt/format.h>

#include "core/protocol.h"
#include "core/text.h"
#include "web/api_routes.h"
#include "web/daemon_link.h"
#include "web/web_app.h"

namespace jg::web {

namespace {

void reply_json(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(json_text(body) + "\n", "application/json");
}

json error_body(std::string_view code, std::string_view message) {
    return {{"ok", false}, {"error", {{"code", code}, {"message", message}}}};
}

// The bearer token of `Authorization: Bearer X`; empty when there is none.
std::string bearer(const httplib::Request& req) {
    const std::string h = req.get_header_value("Authorization");
    constexpr std::string_view kScheme = "Bearer ";
    if (h.size() <= kScheme.size() || h.compare(0, kScheme.size(), kScheme) != 0) return {};
    return h.substr(kScheme.size());
}

void handle_api(const httplib::Request& req, httplib::Response& res, WebApp& app) {
    const std::string token = bearer(req);
    if (token.empty()) {
        res.set_header("WWW-Authenticate", "Bearer");
        return reply_json(
            res, 401,
            error_body("unauthenticated",
                       "this API needs an ID token: send Authorization: Bearer TOKEN (jitgate login "
                       "gives one)"));
    }
    auto client = caller_address(req, app);
    if (!client) return reply_json(res, 400, error_body(code::kInvalid, client.error()));
    std::map<std::string, std::string> query(req.params.begin(), req.params.end());
    ApiInput in{req.method, req.path, &query, req.body, *client};
    auto routed = route_api(in);
    if (auto* e = std::get_if<ApiError>(&routed))
        return reply_json(res, e->status, error_body(e->code, e->message));
    const auto& call = std::get<ApiCall>(routed);
    json reply = ask_daemon(app.opt.socket, call.op, call.args, token);
    const int status = status_for_reply(reply);
    if (status == 401) res.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    if (auto ev = reply.find("events"); ev != reply.end() && reply.contains("result")) {
        reply["result"]["records"] = std::move(*ev);
        reply.erase("events");
    }
    reply_json(res, status, reply);
}

}  // namespace

void add_api_routes(httplib::Server& srv, WebApp& app) {
    auto h = [&app](const httplib::Request& req, httplib::Response& res) { handle_api(req, res, app); };
    srv.Get(R"(/api/v1/.*)", h);
    srv.Post(R"(/api/v1/.*)", h);
    srv.Put(R"(/api/v1/.*)", h);
    srv.Delete(R"(/api/v1/.*)", h);
}

}  // namespace jg::web
