#include "web/oidc_client.h"

#include <algorithm>

#include <fmt/format.h>
#include <httplib.h>

#include "core/protocol.h"
#include "core/url.h"
#include "web/random.h"

namespace jg::web {

namespace {

constexpr const char* kCaBundle = "/etc/ssl/certs/ca-certificates.crt";
constexpr std::size_t kMaxIdpReplyBytes = 256 * 1024;

std::unique_ptr<httplib::Client> client_for(const std::string& origin) {
    auto c = std::make_unique<httplib::Client>(origin);
    c->set_connection_timeout(5);
    c->set_read_timeout(10);
    c->set_write_timeout(10);
    if (origin.starts_with("https://")) {
        c->set_ca_cert_path(kCaBundle);
        c->enable_server_certificate_verification(true);
    }
    return c;
}

std::string form_encode(std::initializer_list<std::pair<const char*, std::string>> fields) {
    std::string out;
    for (const auto& [k, v] : fields) {
        if (!out.empty()) out += '&';
        out += k;
        out += '=';
        out += httplib::detail::encode_query_param(v);
    }
    return out;
}

Result<nlohmann::json> json_reply(const httplib::Result& r, const std::string& what) {
    if (!r)
        return err(fmt::format("the identity provider's {} could not be reached ({})", what,
                               httplib::to_string(r.error())));
    if (r->body.size() > kMaxIdpReplyBytes)
        return err(fmt::format("the identity provider's {} answered too much", what));
    auto j = parse_json_bounded(r->body);
    if (j.is_discarded() || !j.is_object())
        return err(fmt::format("the identity provider's {} answered HTTP {} without a JSON object", what,
                               r->status));
    return j;
}

}  // namespace

Result<SplitUrl> split_issuer_url(const std::string& url) {
    const bool https = url.starts_with("https://");
    if (!https && !url.starts_with("http://"))
        return err(fmt::format("the URL {} must begin with https://", url));
    const std::size_t host_at = https ? 8 : 7;
    const std::size_t slash = url.find('/', host_at);
    SplitUrl s{url.substr(0, slash), slash == std::string::npos ? "" : url.substr(slash)};
    std::string host = s.origin.substr(host_at);
    if (host.empty()) return err(fmt::format("the URL {} names no host", url));
    if (auto colon = host.rfind(':'); colon != std::string::npos && host.back() != ']') host.resize(colon);
    if (!https && !is_loopback_host(host))
        return err(
            fmt::format("the URL {} must use https (http only to a loopback address, for tests)", url));
    return s;
}

Result<TokenClaims> read_claims(const std::string& id_token, const std::string& username_claim) {
    const auto a = id_token.find('.'), b = id_token.find('.', a == std::string::npos ? 0 : a + 1);
    std::string payload;
    if (a == std::string::npos || b == std::string::npos ||
        !base64url_decode(std::string_view(id_token).substr(a + 1, b - a - 1), payload))
        return err("the identity provider's ID token is not a JWT");
    auto j = parse_json_bounded(payload);
    if (j.is_discarded() || !j.is_object()) return err("the identity provider's ID token holds no claims");
    TokenClaims c;
    if (auto n = j.find("nonce"); n != j.end() && n->is_string()) c.nonce = *n;
    if (auto u = j.find(username_claim); u != j.end() && u->is_string()) c.user = *u;
    const auto exp = j.find("exp");
    if (exp == j.end() || !exp->is_number_integer())
        return err("the identity provider's ID token has no expiry (exp)");
    // Bounded before it becomes a time point (nanoseconds past 2262 overflow);
    // the session's own limit is shorter anyway.
    constexpr std::int64_t kYear2200 = 7258118400;
    c.expires = Clock::time_point(
        std::chrono::seconds(std::clamp<std::int64_t>(exp->get<std::int64_t>(), 0, kYear2200)));
    return c;
}

Result<bool> OidcClient::discover() {
    if (!token_endpoint_.empty()) return true;
    auto base = split_issuer_url(s_.issuer);
    if (!base) return err(base.error());
    std::string path = base->path;
    while (!path.empty() && path.back() == '/') path.pop_back();
    auto reply = json_reply(client_for(base->origin)->Get(path + "/.well-known/openid-configuration"),
                            "discovery document");
    if (!reply) return err(reply.error());
    const auto& d = *reply;
    if (d.value("issuer", "") != s_.issuer)
        return err(fmt::format("the discovery document names issuer \"{}\", not {}", d.value("issuer", ""),
                               s_.issuer));
    for (const char* k : {"authorization_endpoint", "token_endpoint"}) {
        const std::string v = d.value(k, "");
        if (auto u = split_issuer_url(v); !u)
            return err(fmt::format("the discovery document's {}: {}", k, u.error()));
    }
    authorization_endpoint_ = d.value("authorization_endpoint", "");
    token_endpoint_ = d.value("token_endpoint", "");
    return true;
}

std::string OidcClient::authorize_url(const PendingLogin& login, const std::string& redirect_uri) const {
    const char sep = authorization_endpoint_.find('?') == std::string::npos ? '?' : '&';
    return authorization_endpoint_ + sep +
           form_encode({{"response_type", "code"},
                        {"client_id", s_.client_id},
                        {"redirect_uri", redirect_uri},
                        {"scope", s_.scopes},
                        {"state", login.state},
                        {"nonce", login.nonce},
                        {"code_challenge", pkce_challenge(login.verifier)},
                        {"code_challenge_method", "S256"}});
}

Result<nlohmann::json> OidcClient::post_form(const std::string& url, const std::string& form) const {
    auto u = split_issuer_url(url);
    if (!u) return err(u.error());
    return json_reply(client_for(u->origin)->Post(u->path, form, "application/x-www-form-urlencoded"),
                      "token endpoint");
}

Result<std::string> OidcClient::exchange(const std::string& code, const PendingLogin& login,
                                         const std::string& redirect_uri) const {
    auto reply = post_form(token_endpoint_, form_encode({{"grant_type", "authorization_code"},
                                                         {"code", code},
                                                         {"redirect_uri", redirect_uri},
                                                         {"client_id", s_.client_id},
                                                         {"code_verifier", login.verifier}}));
    if (!reply) return err(reply.error());
    const auto tok = reply->find("id_token");
    if (tok == reply->end() || !tok->is_string())
        return err(
            fmt::format("the identity provider gave no ID token ({})", reply->value("error", "no reason")));
    auto claims = read_claims(*tok, s_.username_claim);
    if (!claims) return err(claims.error());
    if (!equal_constant_time(claims->nonce, login.nonce))
        return err("the ID token's nonce is not the one this sign-in sent; sign in again");
    return tok->get<std::string>();
}

}  // namespace jg::web
