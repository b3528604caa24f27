#pragma once
// What the CLI asks of the OpenID provider: its discovery document, and its
// token endpoint (the device code grant of jitgate login, and a refresh).
#include <nlohmann/json.hpp>
#include <string>

#include "cli/token_store.h"
#include "core/result.h"

namespace jg {

struct IdpEndpoints {
    std::string token_endpoint;
    std::string device_authorization_endpoint;  // empty when the provider has none
};

// The issuer's discovery document, its "issuer" checked to be `issuer`, its
// endpoints under the same https (or loopback http) rule.
Result<IdpEndpoints> discover_idp(const std::string& issuer);

// POST form to an endpoint of the provider: its status and JSON body (an
// object; an OAuth error answer has "error"). Err when no JSON came.
struct IdpAnswer {
    long status = 0;
    nlohmann::json body;
};
Result<IdpAnswer> idp_post(const std::string& url, const std::string& form);

// Fills t's id_token, expires_at and user (and refresh_token, when the
// answer rotates it) from a token endpoint's 200 answer; err when it holds
// no usable ID token.
Result<bool> take_tokens(const nlohmann::json& answer, StoredToken& t);

// A new ID token for t through its refresh token, saved; err (one sentence
// saying why) when there is no refresh token or the provider refused it.
Result<bool> refresh_token(StoredToken& t);

}  // namespace jg
