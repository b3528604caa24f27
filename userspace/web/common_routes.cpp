#include <fmt/format.h>

#include "web/assets.h"
#include "web/web_app.h"

namespace jg::web {

namespace {

// Nothing from elsewhere, no inline script or style, no framing, forms only
// to this host.
constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

}  // namespace

Result<std::string> caller_address(const httplib::Request& req, const WebApp& app) {
    // Every X-Forwarded-For line, in order, as one list (RFC 9110 §5.3): a
    // proxy that adds its own line after the client's (HAProxy's forwardfor)
    // must not leave the client's own line to be read as the truth.
    std::string xff;
    const std::size_t lines = req.get_header_value_count("X-Forwarded-For");
    for (std::size_t i = 0; i < lines; ++i)
        xff += (i ? ", " : "") + req.get_header_value("X-Forwarded-For", i);
    return client_address(req.remote_addr, xff, app.opt.proxies);
}

void add_common_routes(httplib::Server& srv, WebApp& app) {
    srv.set_post_routing_handler([&app](const httplib::Request&, httplib::Response& res) {
        res.set_header("Content-Security-Policy", kCsp);
        res.set_header("X-Frame-Options", "DENY");
        res.set_header("X-Content-Type-Options", "nosniff");
        // Not no-referrer: under it browsers send "Origin: null" with our own
        // form posts, which the CSRF check (rightly) refuses.
        res.set_header("Referrer-Policy", "same-origin");
        res.set_header("Cross-Origin-Opener-Policy", "same-origin");
        res.set_header("Cross-Origin-Resource-Policy", "same-origin");
        if (!res.has_header("Cache-Control")) res.set_header("Cache-Control", "no-store");
        if (app.opt.tls()) res.set_header("Strict-Transport-Security", "max-age=31536000");
    });
    srv.Get("/static/jitgate.css", [](const httplib::Request&, httplib::Response& res) {
        res.set_header("Cache-Control", "max-age=3600");
        res.set_content(kStylesheet, "text/css; charset=utf-8");
    });
    // Browsers ask for it on every site; there is none.
    srv.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
    srv.Get("/static/countdown.js", [](const httplib::Request&, httplib::Response& res) {
        res.set_header("Cache-Control", "max-age=3600");
        res.set_content(kCountdownScript, "text/javascript; charset=utf-8");
    });
}

}  // namespace jg::web
