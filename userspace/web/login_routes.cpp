#include <fmt/format.h>

#include <algorithm>

#include "web/api_routes.h"
#include "web/cookies.h"
#include "web/daemon_link.h"
#include "web/pages.h"
#include "web/random.h"
#include "web/web_app.h"

namespace jg::web {

namespace {

constexpr const char* kLoginCookie = "jg_login";

void html(httplib::Response& res, int status, const std::string& body) {
    res.status = status;
    res.set_content(body, "text/html; charset=utf-8");
}

std::string redirect_uri(const WebApp& app) { return app.opt.public_url + "/auth/callback"; }

Result<bool> discovered(WebApp& app) {
    std::lock_guard lock(app.oidc_mu);
    return app.oidc.discover();
}

// GET /login: a new authorization code flow, bound to this browser by a
// random login cookie (so a code from someone else's flow is refused).
void start_login(const httplib::Request& req, httplib::Response& res, WebApp& app) {
    if (auto d = discovered(app); !d)
        return html(res, 502, sign_in_page("Sign-in is not available: " + d.error() + "."));
    const std::string binding = random_token();
    const auto from = caller_address(req, app);
    if (!from) return html(res, 400, sign_in_page("Sign-in refused: " + from.error() + "."));
    PendingLogin login = app.sessions.begin_login(binding, login_origin(*from));
    res.set_header("Set-Cookie",
                   set_cookie(kLoginCookie, binding,
                              std::chrono::duration_cast<std::chrono::seconds>(kLoginTimeout).count(),
                              app.opt.secure_cookies(), "Lax", "/auth/"));
    res.status = 302;
    res.set_header("Location", app.oidc.authorize_url(login, redirect_uri(app)));
}

// GET /auth/callback?code&state: state and binding checked, the code
// exchanged (PKCE verifier), the nonce checked, and jitgated asked whether
// it accepts the token before a session exists.
void finish_login(const httplib::Request& req, httplib::Response& res, WebApp& app) {
    if (req.has_param("error")) {
        // Shown only when it is an OAuth error code (RFC 6749: a few
        // lowercase words): anyone can write this link, and any other text
        // would be their sentence on our page.
        const std::string code = req.get_param_value("error");
        const bool a_code = !code.empty() && code.size() <= 64 &&
                            std::all_of(code.begin(), code.end(),
                                        [](char ch) { return (ch >= 'a' && ch <= 'z') || ch == '_'; });
        return html(res, 400,
                    sign_in_page(a_code ? "The identity provider refused the sign-in (" + code + ")."
                                        : std::string("The identity provider refused the sign-in.")));
    }
    const std::string binding = cookie_value(req.get_header_value("Cookie"), kLoginCookie);
    auto login = app.sessions.finish_login(req.get_param_value("state"), binding);
    if (!login || req.get_param_value("code").empty())
        return html(res, 400,
                    sign_in_page("This sign-in was not started here, or took too long; sign in again."));
    auto token = app.oidc.exchange(req.get_param_value("code"), *login, redirect_uri(app));
    if (!token) return html(res, 400, sign_in_page("Sign-in failed: " + token.error() + "."));
    json check = ask_daemon(app.opt.socket, "status", json::object(), *token);
    if (!check.value("ok", false)) {
        const auto& e = check["error"];
        return html(
            res, status_for_reply(check) == 401 ? 401 : 502,
            sign_in_page("jitgated did not accept this sign-in: " + e.value("message", "no reason") + "."));
    }
    auto claims = read_claims(*token, app.opt.oidc.username_claim);
    if (!claims) return html(res, 400, sign_in_page("Sign-in failed: " + claims.error() + "."));
    Session s = app.sessions.create(*token, claims->user, claims->expires);
    const auto life = std::chrono::duration_cast<std::chrono::seconds>(s.expires - Clock::now()).count();
    res.set_header("Set-Cookie", set_cookie(session_cookie(app.opt.secure_cookies()), s.id,
                                            std::max<long>(life, 1), app.opt.secure_cookies(), "Strict"));
    res.headers.emplace("Set-Cookie",
                        set_cookie(kLoginCookie, "", 0, app.opt.secure_cookies(), "Lax", "/auth/"));
    html(res, 200, signed_in_page("/requests"));
}

}  // namespace

void add_login_routes(httplib::Server& srv, WebApp& app) {
    srv.Get("/login",
            [&app](const httplib::Request& req, httplib::Response& res) { start_login(req, res, app); });
    srv.Get("/auth/callback",
            [&app](const httplib::Request& req, httplib::Response& res) { finish_login(req, res, app); });
}

}  // namespace jg::web
