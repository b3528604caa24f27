#include "identity/jwt.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/clock.h"
#include "core/protocol.h"
#include "core/text.h"
#include "util/crypto_api.h"

namespace jg {

namespace {

using json = nlohmann::json;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;
using SigPtr = std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)>;

json decoded_object(std::string_view part) {
    std::string text;
    if (!base64url_decode(part, text)) return json(json::value_t::discarded);
    json j = parse_json_bounded(text);
    return j.is_object() ? j : json(json::value_t::discarded);
}

// JOSE writes an ES256 signature as r || s, 32 bytes each (RFC 7518 §3.4);
// OpenSSL verifies the DER form.
std::optional<std::string> es256_der(const std::string& raw) {
    if (raw.size() != 64) return std::nullopt;
    const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
    SigPtr sig(jg::crypto().ECDSA_SIG_new(), jg::crypto().ECDSA_SIG_free);
    BIGNUM* r = jg::crypto().BN_bin2bn(p, 32, nullptr);
    BIGNUM* s = jg::crypto().BN_bin2bn(p + 32, 32, nullptr);
    if (!sig || !r || !s || jg::crypto().ECDSA_SIG_set0(sig.get(), r, s) != 1) {
        jg::crypto().BN_free(r);
        jg::crypto().BN_free(s);
        return std::nullopt;
    }
    unsigned char* der = nullptr;
    const int n = jg::crypto().i2d_ECDSA_SIG(sig.get(), &der);
    if (n <= 0) return std::nullopt;
    std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
    jg::crypto().CRYPTO_free(der, OPENSSL_FILE, OPENSSL_LINE);
    return out;
}

// A NumericDate claim (RFC 7519 §2) as whole seconds; nullopt when absent
// or not a finite number.
std::optional<std::int64_t> numeric_date(const json& claims, const char* name) {
    auto it = claims.find(name);
    if (it == claims.end() || !it->is_number()) return std::nullopt;
    const double d = it->get<double>();
    if (!std::isfinite(d) || d < 0 || d > 1e13) return std::nullopt;
    return static_cast<std::int64_t>(d);
}

// The policy's rule for a principal name (core/toml_checker.h principal).
bool principal_name(const std::string& s) {
    if (s.empty() || s.size() > 32) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '$'))
            return false;
    return true;
}

// Claims may reach 1e13 s (numeric_date): clamped to year 9999 before the
// microseconds, which would overflow int64 past about 9.2e12 s.
std::string when(std::int64_t s) {
    return rfc3339_us(std::min<std::int64_t>(s, 253402300799) * 1000000).substr(0, 19) + "Z";
}

Result<bool> check_audience(const json& claims, const TokenRules& rules) {
    auto aud = claims.find("aud");
    bool ok = false;
    std::size_t count = 0;
    if (aud != claims.end() && aud->is_string()) {
        ok = *aud == rules.audience;
        count = 1;
    } else if (aud != claims.end() && aud->is_array()) {
        for (const auto& a : *aud) ok = ok || (a.is_string() && a == rules.audience);
        count = aud->size();
    }
    if (!ok) return err(fmt::format("the token's audience (aud) does not hold '{}'", rules.audience));
    // OIDC Core §3.1.3.7: azp, when present, names the client the token was
    // issued to; with several audiences it must be there.
    auto azp = claims.find("azp");
    if (azp != claims.end() && !(azp->is_string() && *azp == rules.client_id))
        return err(fmt::format("the token was issued to another client (azp is not '{}')", rules.client_id));
    if (count > 1 && azp == claims.end())
        return err("the token names several audiences but not the client it was issued to (azp)");
    return true;
}

Result<bool> check_times(const json& claims, std::int64_t now) {
    auto exp = numeric_date(claims, "exp");
    if (!exp) return err("the token has no expiry time (exp)");
    if (*exp + kTokenSkewS < now) return err(fmt::format("the token expired at {} (exp)", when(*exp)));
    if (claims.contains("nbf")) {
        auto nbf = numeric_date(claims, "nbf");
        if (!nbf) return err("the token's not-before time (nbf) is not a number");
        if (*nbf - kTokenSkewS > now)
            return err(fmt::format("the token is not valid before {} (nbf)", when(*nbf)));
    }
    auto iat = numeric_date(claims, "iat");
    if (!iat) return err("the token has no issue time (iat)");
    if (*iat - kTokenSkewS > now)
        return err(fmt::format("the token was issued in the future, at {} (iat)", when(*iat)));
    return true;
}

// The groups claim: a list of names (or one name); names that could not be
// a policy's @group are left out, since no policy can name them.
std::vector<std::string> groups_of(const json& claims, const std::string& claim) {
    std::vector<std::string> out;
    auto g = claims.find(claim);
    if (g == claims.end()) return out;
    auto add = [&](const json& v) {
        if (out.size() < 256 && v.is_string() && principal_name(v.get<std::string>())) out.push_back(v);
    };
    if (g->is_array())
        for (const auto& v : *g) add(v);
    else
        add(*g);
    return out;
}

}  // namespace

Result<Jws> parse_jws(std::string_view token) {
    if (token.size() > kMaxIdTokenBytes)
        return err(fmt::format("the token is longer than {} bytes", kMaxIdTokenBytes));
    const auto d1 = token.find('.');
    const auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
    if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
        return err("the token is not a signed JWT (three base64url parts separated by dots)");
    Jws j;
    j.header = decoded_object(token.substr(0, d1));
    if (j.header.is_discarded()) return err("the token's header is not base64url-encoded JSON");
    const auto alg = j.header.find("alg");
    const std::string name = alg != j.header.end() && alg->is_string() ? alg->get<std::string>() : "";
    if (name == "RS256")
        j.alg = JwsAlg::RS256;
    else if (name == "ES256")
        j.alg = JwsAlg::ES256;
    else if (name == "EdDSA")
        j.alg = JwsAlg::EdDSA;
    else
        return err(fmt::format("the token's algorithm '{}' is not accepted (only RS256, ES256 and EdDSA)",
                               escape_terminal(name.substr(0, 16))));
    // A critical extension jitgate does not know must not be ignored (RFC 7515 §4.1.11).
    if (j.header.contains("crit"))
        return err("the token has critical header parameters (crit) jitgate does not know");
    const auto kid = j.header.find("kid");
    if (kid == j.header.end() || !kid->is_string() || kid->get_ref<const std::string&>().empty() ||
        kid->get_ref<const std::string&>().size() > 256)
        return err("the token's header names no key (kid)");
    j.kid = kid->get<std::string>();
    j.claims = decoded_object(token.substr(d1 + 1, d2 - d1 - 1));
    if (j.claims.is_discarded()) return err("the token's claims are not base64url-encoded JSON");
    if (!base64url_decode(token.substr(d2 + 1), j.signature) || j.signature.empty())
        return err("the token's signature is missing or not base64url");
    j.signing_input = std::string(token.substr(0, d2));
    return j;
}

Result<bool> verify_jws_signature(const Jws& jws, const Jwk& key) {
    if (key.alg != jws.alg)
        return err(fmt::format("the token's algorithm {} is not the one of its key '{}' ({})",
                               jws_alg_name(jws.alg), escape_terminal(key.kid.substr(0, 64)),
                               jws_alg_name(key.alg)));
    std::string sig = jws.signature;
    if (jws.alg == JwsAlg::ES256) {
        auto der = es256_der(sig);
        if (!der) return err("the token's ES256 signature is not 64 bytes (r || s)");
        sig = std::move(*der);
    }
    MdCtxPtr ctx(jg::crypto().EVP_MD_CTX_new(), jg::crypto().EVP_MD_CTX_free);
    // RS256 is PKCS#1 v1.5 with SHA-256, OpenSSL's default padding for RSA;
    // Ed25519 takes no digest.
    const EVP_MD* md = jws.alg == JwsAlg::EdDSA ? nullptr : jg::crypto().EVP_sha256();
    const bool ok =
        ctx && jg::crypto().EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.key.get()) == 1 &&
        jg::crypto().EVP_DigestVerify(
            ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
            reinterpret_cast<const unsigned char*>(jws.signing_input.data()), jws.signing_input.size()) == 1;
    if (!ok)
        return err(fmt::format("the token's signature does not verify with key '{}'",
                               escape_terminal(key.kid.substr(0, 64))));
    return true;
}

Result<TokenIdentity> check_id_claims(const json& claims, const TokenRules& rules, std::int64_t now_s) {
    auto iss = claims.find("iss");
    if (iss == claims.end() || !iss->is_string() || *iss != rules.issuer)
        return err(fmt::format("the token's issuer (iss) is not '{}'", rules.issuer));
    if (auto aud = check_audience(claims, rules); !aud) return err(aud.error());
    if (auto times = check_times(claims, now_s); !times) return err(times.error());
    TokenIdentity id;
    auto sub = claims.find("sub");
    if (sub == claims.end() || !sub->is_string() || sub->get_ref<const std::string&>().empty() ||
        sub->get_ref<const std::string&>().size() > 255 || text_refusal("sub", sub->get<std::string>()))
        return err("the token's subject (sub) is missing or not one line of printable text");
    id.subject = sub->get<std::string>();
    auto user = claims.find(rules.username_claim);
    if (user == claims.end() || !user->is_string() || !principal_name(user->get<std::string>()))
        return err(
            fmt::format("the token's {} claim is missing or not a user name (1-32 letters, digits, "
                        "'_', '-', '.', '$')",
                        rules.username_claim));
    id.user = user->get<std::string>();
    id.issuer = rules.issuer;
    id.groups = groups_of(claims, rules.groups_claim);
    id.expires_s = *numeric_date(claims, "exp");
    return id;
}

Result<TokenIdentity> verify_id_token(std::string_view token, const TokenRules& rules,
                                      const KeyLookup& key_of, std::int64_t now_s) {
    auto jws = parse_jws(token);
    if (!jws) return err(jws.error());
    std::string why;
    const Jwk* key = key_of(jws->kid, &why);
    if (!key)
        return err(why.empty() ? fmt::format("the token's key '{}' is not one of the issuer's keys (JWKS)",
                                             escape_terminal(jws->kid.substr(0, 64)))
                               : why);
    if (auto sig = verify_jws_signature(*jws, *key); !sig) return err(sig.error());
    return check_id_claims(jws->claims, rules, now_s);
}

}  // namespace jg
