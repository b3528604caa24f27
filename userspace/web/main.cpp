// jitgate-web: the approval page and HTTP API of design.md §8. It runs as
// its own unprivileged user and holds no authority: every operation goes
// to jitgated with the caller's ID token, and jitgated decides.
#include <unistd.h>

#include <fmt/format.h>
#include <cstdio>

#include "web/api_routes.h"
#include "web/web_app.h"

namespace {

std::unique_ptr<httplib::Server> make_server(const jg::web::WebOptions& o) {
    if (o.tls()) return std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
    return std::make_unique<httplib::Server>();
}

}  // namespace

int main(int argc, char** argv) {
    jg::web::WebOptions o;
    if (int rc = jg::web::parse_web_flags(argc, argv, o); rc >= 0) return rc;
    if (geteuid() == 0 || getegid() == 0) {
        std::fputs(
            "jitgate-web: refusing to run as root: it needs no privilege; run it as its own user "
            "(the jitgate-web.service unit does)\n",
            stderr);
        return 1;
    }
    if (auto s = jg::web::load_settings(o); !s) {
        std::fprintf(stderr, "jitgate-web: %s\n", s.error().c_str());
        return 1;
    }
    jg::web::WebApp app(o);
    auto srv = make_server(o);
    if (!srv->is_valid()) {
        std::fprintf(stderr,
                     "jitgate-web: cannot use the TLS certificate %s and key %s; check both are PEM files "
                     "this user may read\n",
                     o.tls_cert.c_str(), o.tls_key.c_str());
        return 1;
    }
    srv->set_payload_max_length(jg::web::kMaxApiBodyBytes);
    // One thread per connection being read: cpp-httplib's default of 8 let
    // eight slow clients (a header line every few seconds) hold every one.
    // More threads raise that bar; a proxy that buffers whole requests in
    // front removes it (README: jitgate-web behind a proxy).
    srv->new_task_queue = [] { return new httplib::ThreadPool(jg::web::kWorkers); };
    srv->set_read_timeout(10);
    srv->set_write_timeout(10);
    srv->set_keep_alive_max_count(100);
    jg::web::add_common_routes(*srv, app);
    jg::web::add_browser_routes(*srv, app);
    jg::web::add_api_routes(*srv, app);
    if (!srv->bind_to_port(o.host, o.port)) {
        std::fprintf(stderr, "jitgate-web: cannot listen on %s; is the address local and the port free?\n",
                     o.listen.c_str());
        return 1;
    }
    std::fprintf(stderr, "jitgate-web: serving %s on %s\n", o.public_url.c_str(), o.listen.c_str());
    return srv->listen_after_bind() ? 0 : 1;
}
