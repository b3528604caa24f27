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

// The operation a request asks for: route_api for the REST paths, route_op
// for POST /api/v1/op.
using Router = std::variant<ApiCall, ApiError> (*)(const httplib::Request& req, const std::string& client);

std::variant<ApiCall, ApiError> rest_route(const httplib::Request& req, const std::string& client) {
    std::map<std::string, std::string> query(req.params.begin(), req.params.end());
    return route_api(ApiInput{req.method, req.path, &query, req.body, client});
}

std::variant<ApiCall, ApiError> op_route(const httplib::Request& req, const std::string& client) {
    return route_op(req.body, client);
}

void handle_api(const httplib::Request& req, httplib::Response& res, WebApp& app, Router route) {
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
    auto routed = route(req, *client);
    if (auto* e = std::get_if<ApiError>(&routed))
        return reply_json(res, e->status, error_body(e->code, e->message));
    const auto& call = std::get<ApiCall>(routed);
    json reply = ask_daemon(app.opt.socket, call.op, call.args, token);
    const int status = status_for_reply(reply);
    if (status == 401) res.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    // The REST API names an audit stream's lines "records"; /api/v1/op keeps
    // the socket's shape, which the CLI reads as it reads the socket.
    if (auto ev = reply.find("events");
        ev != reply.end() && reply.contains("result") && route == rest_route) {
        reply["result"]["records"] = std::move(*ev);
        reply.erase("events");
    }
    reply_json(res, status, reply);
}

// GET /api/v1/login: what `jitgate login URL` needs to sign in at the
// issuer (device authorization grant); nothing secret, no token needed.
void login_info(httplib::Response& res, const WebApp& app) {
    const auto& o = app.opt.oidc;
    reply_json(
        res, 200,
        {{"ok", true}, {"result", {{"issuer", o.issuer}, {"client_id", o.client_id}, {"scopes", o.scopes}}}});
}

}  // namespace

void add_api_routes(httplib::Server& srv, WebApp& app) {
    // Before the catch-all below: cpp-httplib takes the first match.
    srv.Get("/api/v1/login",
            [&app](const httplib::Request&, httplib::Response& res) { login_info(res, app); });
    srv.Post("/api/v1/op", [&app](const httplib::Request& req, httplib::Response& res) {
        handle_api(req, res, app, op_route);
    });
    auto h = [&app](const httplib::Request& req, httplib::Response& res) {
        handle_api(req, res, app, rest_route);
    };
    srv.Get(R"(/api/v1/.*)", h);
    srv.Post(R"(/api/v1/.*)", h);
    srv.Put(R"(/api/v1/.*)", h);
    srv.Delete(R"(/api/v1/.*)", h);
}

}  // namespace jg::web
