#include "cli/idp_client.h"

#include <fmt/format.h>

#include "cli/http_post.h"
#include "core/protocol.h"
#include "core/text.h"

namespace jg {

namespace {

using json = nlohmann::json;

HttpBounds idp_bounds() {
    HttpBounds b;
    b.total_timeout_ms = 15000;
    b.max_bytes = 256 * 1024;
    return b;
}

std::string string_of(const json& j, const char* key) {
    auto v = j.find(key);
    return v != j.end() && v->is_string() ? v->get<std::string>() : std::string();
}

}  // namespace

Result<IdpEndpoints> discover_idp(const std::string& issuer) {
    if (auto ok = check_http_url(issuer, "the issuer"); !ok) return err(ok.error());
    std::string base = issuer;
    while (!base.empty() && base.back() == '/') base.pop_back();
    const std::string url = base + "/.well-known/openid-configuration";
    auto got = http_send(url, {"Accept: application/json"}, "", false, idp_bounds());
    if (!got)
        return err(fmt::format("cannot read the identity provider's discovery document: {}", got.error()));
    if (got->status != 200)
        return err(fmt::format("the identity provider answered HTTP {} for {}", got->status, url));
    json d = parse_json_bounded(got->body);
    if (d.is_discarded() || !d.is_object())
        return err(fmt::format("the identity provider's discovery document {} is not JSON", url));
    if (string_of(d, "issuer") != issuer)
        return err(
            fmt::format("the discovery document of {} names another issuer ({}); check [identity.oidc] "
                        "issuer",
                        issuer, escape_terminal(string_of(d, "issuer"))));
    IdpEndpoints e{string_of(d, "token_endpoint"), string_of(d, "device_authorization_endpoint")};
    if (auto ok = check_http_url(e.token_endpoint, "the provider's token endpoint"); !ok)
        return err(ok.error());
    if (!e.device_authorization_endpoint.empty())
        if (auto ok = check_http_url(e.device_authorization_endpoint, "the provider's device endpoint"); !ok)
            return err(ok.error());
    return e;
}

Result<IdpAnswer> idp_post(const std::string& url, const std::string& form) {
    auto got = http_send(url, {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"},
                         form, true, idp_bounds());
    if (!got) return err(fmt::format("the identity provider did not answer: {}", got.error()));
    json body = parse_json_bounded(got->body);
    if (body.is_discarded() || !body.is_object())
        return err(
            fmt::format("the identity provider answered HTTP {} without JSON from {}", got->status, url));
    return IdpAnswer{got->status, std::move(body)};
}

Result<bool> take_tokens(const json& answer, StoredToken& t) {
    const std::string id_token = string_of(answer, "id_token");
    if (id_token.empty())
        return err(
            "the identity provider gave no ID token; ask its administrator to grant the client the "
            "openid scope");
    std::int64_t exp = 0;
    std::string user;
    if (auto ok = read_token_claims(id_token, exp, user); !ok) return ok;
    t.id_token = id_token;
    t.expires_at = exp;
    t.user = user;
    if (const std::string rt = string_of(answer, "refresh_token"); !rt.empty()) t.refresh_token = rt;
    return true;
}

Result<bool> refresh_token(StoredToken& t) {
    if (t.refresh_token.empty()) return err("the identity provider gave no refresh token");
    auto a = idp_post(t.token_endpoint, form_body({{"grant_type", "refresh_token"},
                                                   {"refresh_token", t.refresh_token},
                                                   {"client_id", t.client_id}}));
    if (!a) return err(a.error());
    if (a->status != 200) {
        const std::string e = string_of(a->body, "error");
        return err(fmt::format("the identity provider refused the refresh token ({})",
                               escape_terminal(e.empty() ? fmt::format("HTTP {}", a->status) : e)));
    }
    if (auto ok = take_tokens(a->body, t); !ok) return ok;
    if (auto saved = save_token(t); !saved) return err(saved.error());
    return true;
}

}  // namespace jg
