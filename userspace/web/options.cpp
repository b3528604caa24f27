#include "web/options.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <CLI/CLI.hpp>
#include <charconv>

namespace jg::web {

std::string WebOptions::origin() const {
    auto scheme_end = public_url.find("://");
    auto slash = public_url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
    return public_url.substr(0, slash);
}

int parse_web_flags(int argc, char** argv, WebOptions& o) {
    CLI::App app{"jitgate-web: approve and revoke jitgate requests from a browser or over HTTP"};
    app.add_option("--listen", o.listen, "ADDR:PORT to serve on (default 127.0.0.1:8443)");
    app.add_option("--tls-cert", o.tls_cert, "certificate chain (PEM) for HTTPS");
    app.add_option("--tls-key", o.tls_key, "private key (PEM) for HTTPS");
    app.add_option("--socket", o.socket, "jitgated's control socket");
    app.add_option("--config", o.config, "the configuration file ([identity.oidc], [web])");
    app.add_option("--trusted-proxy", o.trusted_proxy_text,
                   "CIDR of a reverse proxy whose X-Forwarded-For is believed (repeatable)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    return -1;
}

namespace {

Result<bool> split_listen(WebOptions& o) {
    auto colon = o.listen.rfind(':');
    if (colon == std::string::npos) return err(fmt::format("--listen {}: give ADDR:PORT", o.listen));
    o.host = o.listen.substr(0, colon);
    if (o.host.size() > 2 && o.host.front() == '[' && o.host.back() == ']')
        o.host = o.host.substr(1, o.host.size() - 2);
    const std::string port = o.listen.substr(colon + 1);
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), o.port);
    if (ec != std::errc() || p != port.data() + port.size() || o.port < 1 || o.port > 65535)
        return err(fmt::format("--listen {}: the port must be from 1 to 65535", o.listen));
    return true;
}

}  // namespace

Result<bool> load_settings(WebOptions& o) {
    if (auto l = split_listen(o); !l) return l;
    if (o.tls_cert.empty() != o.tls_key.empty()) return err("give both --tls-cert and --tls-key, or neither");
    for (const auto& t : o.trusted_proxy_text)
        if (auto a = o.proxies.add(t); !a) return a;
    toml::table t;
    try {
        t = toml::parse_file(o.config);
    } catch (const toml::parse_error& e) {
        return err(fmt::format("cannot read {}: {}", o.config, std::string(e.description())));
    }
    o.oidc.issuer = t["identity"]["oidc"]["issuer"].value_or(std::string());
    o.oidc.client_id = t["identity"]["oidc"]["client_id"].value_or(std::string());
    o.oidc.username_claim =
        t["identity"]["oidc"]["username_claim"].value_or(std::string("preferred_username"));
    if (auto s = t["web"]["scopes"].value<std::string>()) o.oidc.scopes = *s;
    if (o.oidc.issuer.empty() || o.oidc.client_id.empty())
        return err(
            fmt::format("{} has no [identity.oidc] issuer and client_id: jitgate-web signs people in "
                        "with them; add both",
                        o.config));
    if (auto u = split_issuer_url(o.oidc.issuer); !u) return err("[identity.oidc] issuer: " + u.error());
    const bool v6 = o.host.find(':') != std::string::npos;
    o.public_url = t["web"]["public_url"].value_or(fmt::format("{}://{}{}{}:{}", o.tls() ? "https" : "http",
                                                               v6 ? "[" : "", o.host, v6 ? "]" : "", o.port));
    while (!o.public_url.empty() && o.public_url.back() == '/') o.public_url.pop_back();
    if (!o.public_url.starts_with("https://") && !o.public_url.starts_with("http://"))
        return err(fmt::format("[web] public_url {} must begin with https://", o.public_url));
    return true;
}

}  // namespace jg::web
