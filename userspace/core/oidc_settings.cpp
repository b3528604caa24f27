// [identity.oidc] (design.md §8): the OpenID provider whose ID tokens
// jitgated verifies.  Checked here so that `jitgate policy check` and a
// reload name each problem with its line.
#include <fmt/format.h>
#include <toml++/toml.h>

#include "core/policy.h"
#include "core/text.h"
#include "core/toml_checker.h"
#include "core/url.h"

namespace jg::policy_detail {

namespace {

// Why `url` cannot be an issuer, or nothing: https, or http on loopback
// only (a test provider); no query or fragment (OIDC Discovery §3).
std::optional<std::string> issuer_refusal(const std::string& url) {
    const bool https = url.rfind("https://", 0) == 0;
    const bool http = url.rfind("http://", 0) == 0;
    if ((!https && !http) || url.size() > 512 || text_refusal("issuer", url) ||
        url.find_first_of("?# ") != std::string::npos)
        return "identity.oidc.issuer must be an https:// URL without query or fragment, such as "
               "\"https://sso.example.com/realms/main\"";
    const std::string host = url_host(url);
    if (host.empty()) return "identity.oidc.issuer has no host";
    if (http && !is_loopback_host(host))
        return "identity.oidc.issuer must use https (http:// is accepted only on loopback, for tests)";
    return std::nullopt;
}

// A claim name: printable, short.
bool claim_name(const std::string& s) {
    return !s.empty() && s.size() <= 64 && !text_refusal("claim", s) && s.find(' ') == std::string::npos;
}

}  // namespace

void parse_identity(const toml::table& t, Checker& c, OidcSettings& o) {
    c.only(t, {"oidc"}, "[identity]");
    const toml::node* n = t.get("oidc");
    if (!n) return;
    const toml::table* ot = n->as_table();
    if (!ot) return c.fail(n, Checker::line_of(t), "[identity.oidc] must be a table");
    c.only(*ot, {"issuer", "client_id", "audience", "username_claim", "groups_claim", "jwks_file"},
           "[identity.oidc]");
    const int line = Checker::line_of(*ot);
    const std::string where = "identity.oidc";
    if (auto v = c.str(*ot, "issuer", where)) {
        if (auto why = issuer_refusal(*v))
            c.fail(ot->get("issuer"), line, *why);
        else
            o.issuer = *v;
    } else if (!ot->get("issuer")) {
        c.fail(nullptr, line, "[identity.oidc] needs issuer, the OpenID provider's URL");
    }
    auto client = [&](const char* key) -> std::string {
        auto v = c.str(*ot, key, where);
        if (!v) return {};
        if (v->empty() || v->size() > 256 || text_refusal(key, *v)) {
            c.fail(ot->get(key), line,
                   fmt::format("identity.oidc.{} must be 1-256 printable characters", key));
            return {};
        }
        return *v;
    };
    o.client_id = client("client_id");
    if (!ot->get("client_id"))
        c.fail(nullptr, line, "[identity.oidc] needs client_id, the client registered with the provider");
    o.audience = client("audience");
    if (o.audience.empty()) o.audience = o.client_id;
    for (auto [key, field] :
         {std::pair{"username_claim", &o.username_claim}, {"groups_claim", &o.groups_claim}}) {
        auto v = c.str(*ot, key, where);
        if (!v) continue;
        if (!claim_name(*v))
            c.fail(
                ot->get(key), line,
                fmt::format("identity.oidc.{} must name a claim (1-64 printable characters, no space)", key));
        else
            *field = *v;
    }
    if (auto v = c.str(*ot, "jwks_file", where)) {
        if (v->empty() || (*v)[0] != '/')
            c.fail(ot->get("jwks_file"), line, "identity.oidc.jwks_file must be an absolute path");
        else
            o.jwks_file = *v;
    }
    // Without a complete table, no token is accepted (enabled() is false).
    if (o.client_id.empty()) o.issuer.clear();
}

}  // namespace jg::policy_detail
