#pragma once
// jitgate-web's settings: its flags, and the tables of the shared
// configuration file that concern it ([identity.oidc], [web]).
#include <string>
#include <vector>

#include "core/result.h"
#include "web/oidc_client.h"
#include "web/peer.h"

namespace jg::web {

struct WebOptions {
    std::string listen = "127.0.0.1:8443";
    std::string tls_cert, tls_key;
    std::string socket = "/run/jitgate/jitgate.sock";
    std::string config = "/etc/jitgate/jitgate.toml";
    std::vector<std::string> trusted_proxy_text;
    // Derived by load_settings.
    std::string host;
    int port = 0;
    std::string public_url;  // scheme://host[:port] as browsers reach it ([web] public_url)
    OidcSettings oidc;
    TrustedProxies proxies;
    bool tls() const { return !tls_cert.empty(); }
    // Browsers reach it over https (its own TLS, or a TLS proxy in front as
    // public_url says): cookies are Secure, the session a __Host- one.
    bool secure_cookies() const { return tls() || public_url.starts_with("https://"); }
    // scheme://host[:port] of public_url: what a same-origin Origin header says.
    std::string origin() const;
};

// Parses argv into o; returns the exit code to stop with (0 for --help),
// or -1 to run.
int parse_web_flags(int argc, char** argv, WebOptions& o);
// Reads the config file and checks everything; err is one sentence.
Result<bool> load_settings(WebOptions& o);

}  // namespace jg::web
