#pragma once
// The browser's sign-in: the OIDC authorization code flow with PKCE (S256)
// against the issuer named in [identity.oidc] (design.md §8). jitgate-web
// checks what the flow itself needs (issuer of the discovery document,
// state, nonce); the token's signature and claims are jitgated's to verify.
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "core/result.h"
#include "web/session.h"

namespace jg::web {

struct OidcSettings {
    std::string issuer;
    std::string client_id;
    std::string username_claim = "preferred_username";
    std::string scopes = "openid profile email groups";
};

// The claims of an ID token as jitgate-web reads them: for the nonce check,
// the session's expiry and the name shown. Not a verification.
struct TokenClaims {
    std::string nonce;
    std::string user;
    Clock::time_point expires;
};
Result<TokenClaims> read_claims(const std::string& id_token, const std::string& username_claim);

// The issuer as http(s)://host[:port] and the path below it; err unless
// https, or http to a loopback address (tests).
struct SplitUrl {
    std::string origin;
    std::string path;
};
Result<SplitUrl> split_issuer_url(const std::string& url);

class OidcClient {
public:
    explicit OidcClient(OidcSettings s) : s_(std::move(s)) {}
    // Reads the discovery document (once; again after a failure).
    Result<bool> discover();
    std::string authorize_url(const PendingLogin& login, const std::string& redirect_uri) const;
    // The ID token for `code`, checked against the login's nonce.
    Result<std::string> exchange(const std::string& code, const PendingLogin& login,
                                 const std::string& redirect_uri) const;
    const OidcSettings& settings() const { return s_; }

private:
    Result<nlohmann::json> post_form(const std::string& url, const std::string& form) const;
    OidcSettings s_;
    std::string authorization_endpoint_;
    std::string token_endpoint_;
};

}  // namespace jg::web
