#include <fmt/format.h>

#include <chrono>

#include "core/duration.h"
#include "core/protocol.h"
#include "web/api_routes.h"
#include "web/cookies.h"
#include "web/csrf.h"
#include "web/daemon_link.h"
#include "web/pages.h"
#include "web/web_app.h"

namespace jg::web {

namespace {

void html(httplib::Response& res, int status, const std::string& body) {
    res.status = status;
    res.set_content(body, "text/html; charset=utf-8");
}

void see_other(httplib::Response& res, const std::string& where) {
    res.status = 303;
    res.set_header("Location", where);
}

std::optional<Session> session_of(const httplib::Request& req, WebApp& app) {
    const std::string id =
        cookie_value(req.get_header_value("Cookie"), session_cookie(app.opt.secure_cookies()));
    if (id.empty()) return std::nullopt;
    return app.sessions.find(id);
}

// In a fleet, each active grant's state on each of its target nodes (the
// first kMaxNodeStates grants: one confirm each), for the grants page.
constexpr std::size_t kMaxNodeStates = 50;
void add_node_states(WebApp& app, const Session& s, json& list) {
    std::size_t asked = 0;
    // The page does not wait on a slow jitgated: what is known in 2 s is shown.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (const char* k : {"grants", "break_glass"}) {
        if (!list.contains(k) || !list[k].is_array()) continue;
        for (auto& g : list[k]) {
            if (asked >= kMaxNodeStates || std::chrono::steady_clock::now() >= until) return;
            if (g.value("state", "") != "active" || !g.value("grant_id", json()).is_number_integer())
                continue;
            ++asked;
            json c = ask_daemon(app.opt.socket, "confirm", {{"id", g["grant_id"]}, {"revision", 0}},
                                s.id_token, 2000);
            if (c.value("ok", false) && c["result"].contains("nodes"))
                g["node_states"] = c["result"]["nodes"];
        }
    }
}

std::string error_message(const json& reply) {
    const auto e = reply.find("error");
    return e != reply.end() && e->is_object() ? e->value("message", "jitgated refused") : "jitgated refused";
}

// jitgated refused the session's token (expired, or its keys changed):
// the session ends and the user signs in again.
bool token_refused(const json& reply, httplib::Response& res, WebApp& app, const Session& s) {
    if (status_for_reply(reply) != 401) return false;
    app.sessions.remove(s.id);
    html(res, 401,
         sign_in_page("Your sign-in is no longer accepted (" + error_message(reply) + "); sign in again."));
    return true;
}

PageContext context(const Session& s, WebApp& app) {
    PageContext c;
    c.user = s.user.empty() ? "(no name)" : s.user;
    c.csrf = s.csrf;
    c.notice = app.sessions.take_notice(s.id);
    c.notice_is_error = c.notice.starts_with("Refused") || c.notice.starts_with("Failed");
    return c;
}

void show_page(const httplib::Request& req, httplib::Response& res, WebApp& app, const std::string& which) {
    auto s = session_of(req, app);
    if (!s) return html(res, 200, sign_in_page(""));
    json args = which == "requests" ? json{{"filter", "pending"}}
                : which == "grants" ? json{{"filter", "active"}}
                                    : json{{"limit", 100}};
    const std::string op = which == "audit" ? "audit" : "list";
    json reply = ask_daemon(app.opt.socket, op, args, s->id_token);
    if (token_refused(reply, res, app, *s)) return;
    PageContext c = context(*s, app);
    if (!reply.value("ok", false))
        return html(res, status_for_reply(reply),
                    error_page(c, status_for_reply(reply), error_message(reply)));
    if (which == "requests") return html(res, 200, requests_page(c, reply["result"]));
    if (which == "audit") return html(res, 200, audit_page(c, reply.value("events", json::array())));
    json nodes = ask_daemon(app.opt.socket, "nodes", json::object(), s->id_token);
    if (nodes.value("ok", false)) add_node_states(app, *s, reply["result"]);
    html(res, 200, grants_page(c, reply["result"], nodes.value("ok", false) ? nodes["result"] : json()));
}

// A form post: the session, its CSRF token and origin checked, then the
// operation asked of jitgated; the outcome is shown on the next page.
void act(const httplib::Request& req, httplib::Response& res, WebApp& app, const std::string& op, json args,
         const std::string& back) {
    auto s = session_of(req, app);
    if (!s) return html(res, 403, sign_in_page("Sign in first; nothing was done."));
    FormOrigin f{req.get_param_value("csrf"), req.get_header_value("Origin"),
                 req.get_header_value("Sec-Fetch-Site")};
    if (auto why = csrf_refusal(f, s->csrf, app.opt.origin()))
        return html(res, 403, error_page(context(*s, app), 403, "Nothing was done: " + *why + "."));
    if (op == "logout") {
        app.sessions.remove(s->id);
        res.set_header("Set-Cookie", set_cookie(session_cookie(app.opt.secure_cookies()), "", 0,
                                                app.opt.secure_cookies(), "Strict"));
        return see_other(res, "/");
    }
    json reply = ask_daemon(app.opt.socket, op, args, s->id_token);
    if (token_refused(reply, res, app, *s)) return;
    const std::string id = std::to_string(args.value("id", std::int64_t(0)));
    app.sessions.set_notice(s->id, reply.value("ok", false)
                                       ? fmt::format("{} {}: done.",
                                                     op == "approve" ? "Approved request"
                                                     : op == "deny"  ? "Denied request"
                                                                     : "Revoked grant",
                                                     id)
                                       : fmt::format("Refused: {}", error_message(reply)));
    see_other(res, back);
}

std::int64_t path_id(const httplib::Request& req) {
    try {
        return std::stoll(req.matches[1].str());
    } catch (const std::exception&) {
        return 0;
    }
}

void approve(const httplib::Request& req, httplib::Response& res, WebApp& app) {
    json args = {{"id", path_id(req)}};
    const std::string d = req.get_param_value("duration");
    if (d.find_first_not_of(' ') != std::string::npos) {
        auto secs = parse_duration(d);
        if (!secs) {
            if (auto s = session_of(req, app)) app.sessions.set_notice(s->id, "Refused: " + secs.error());
            return see_other(res, "/requests");
        }
        args["duration_s"] = *secs;
    }
    act(req, res, app, "approve", args, "/requests");
}

}  // namespace

void add_login_routes(httplib::Server& srv, WebApp& app);

void add_browser_routes(httplib::Server& srv, WebApp& app) {
    srv.Get("/", [](const httplib::Request&, httplib::Response& res) { see_other(res, "/requests"); });
    for (const char* page : {"requests", "grants", "audit"})
        srv.Get(std::string("/") + page, [&app, page](const httplib::Request& req, httplib::Response& res) {
            show_page(req, res, app, page);
        });
    srv.Post(R"(/requests/(\d{1,18})/approve)",
             [&app](const httplib::Request& req, httplib::Response& res) { approve(req, res, app); });
    srv.Post(R"(/requests/(\d{1,18})/deny)", [&app](const httplib::Request& req, httplib::Response& res) {
        act(req, res, app, "deny", {{"id", path_id(req)}, {"reason", req.get_param_value("reason")}},
            "/requests");
    });
    srv.Post(R"(/grants/(\d{1,18})/revoke)", [&app](const httplib::Request& req, httplib::Response& res) {
        act(req, res, app, "revoke", {{"id", path_id(req)}}, "/grants");
    });
    srv.Post("/logout", [&app](const httplib::Request& req, httplib::Response& res) {
        act(req, res, app, "logout", json::object(), "/");
    });
    add_login_routes(srv, app);
}

}  // namespace jg::web
