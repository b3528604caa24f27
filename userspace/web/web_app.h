#pragma once
// jitgate-web's state and its routes. The browser's pages (browser_routes)
// and the JSON API (api_routes) both end in ask_daemon with the caller's
// token: nothing here decides who may do what.
#include <httplib.h>

#include "web/oidc_client.h"
#include "web/options.h"
#include "web/session.h"

namespace jg::web {

struct WebApp {
    explicit WebApp(WebOptions o) : opt(std::move(o)), oidc(opt.oidc) {}
    WebOptions opt;
    SessionStore sessions;
    OidcClient oidc;
    std::mutex oidc_mu;  // discovery is written once, under this
};

void add_browser_routes(httplib::Server& srv, WebApp& app);
void add_api_routes(httplib::Server& srv, WebApp& app);
// Security headers on every reply; the two static files.
void add_common_routes(httplib::Server& srv, WebApp& app);
// The caller's address as jitgate-web saw it (peer.h); err sentence when a
// trusted proxy sent a malformed X-Forwarded-For.
Result<std::string> caller_address(const httplib::Request& req, const WebApp& app);

}  // namespace jg::web
