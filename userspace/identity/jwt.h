#pragma once
// OpenID Connect ID tokens (JWS compact serialization, RFC 7515/7519) as
// jitgated checks them (design.md §8): the signature by a key of the
// issuer's JWKS, with RS256, ES256 or EdDSA only; then iss exactly, aud,
// azp, exp, nbf and iat with a 60 s skew, the subject and the user name.
// Each refusal is one sentence naming the check that failed; none quotes
// the token.  No network here: keys come from a lookup the caller gives.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "identity/jwk.h"

namespace jg {

// An ID token is at most this long (core/protocol.h kMaxTokenBytes).
inline constexpr std::size_t kMaxIdTokenBytes = 16 * 1024;
// Clock skew allowed on exp, nbf and iat.
inline constexpr std::int64_t kTokenSkewS = 60;

// A token split and decoded, its signature not yet checked.
struct Jws {
    nlohmann::json header, claims;
    JwsAlg alg = JwsAlg::RS256;
    std::string kid;
    std::string signing_input;  // BASE64URL(header) "." BASE64URL(payload)
    std::string signature;      // decoded
};

// What a token must say ([identity.oidc]).
struct TokenRules {
    std::string issuer;
    std::string client_id;
    std::string audience;  // the aud that must be present
    std::string username_claim = "preferred_username";
    std::string groups_claim = "groups";
};

// Who a verified token names.
struct TokenIdentity {
    std::string user;     // the username claim: a principal name
    std::string subject;  // sub
    std::string issuer;   // iss
    std::vector<std::string> groups;
    std::int64_t expires_s = 0;  // exp
};

// The token's parts: its shape, its header (alg one of the three, a kid,
// no crit) and its claims as a JSON object.
Result<Jws> parse_jws(std::string_view token);
// Whether jws's signature verifies with `key` (whose algorithm must be the token's).
Result<bool> verify_jws_signature(const Jws& jws, const Jwk& key);
// The claims' checks at `now_s` (Unix time), the identity they name.
Result<TokenIdentity> check_id_claims(const nlohmann::json& claims, const TokenRules& rules, std::int64_t now_s);

// The key `kid` (nullptr when unknown) and, when the caller wants to say
// why none was found (the JWKS could not be fetched), its sentence.
using KeyLookup = std::function<const Jwk*(const std::string& kid, std::string* why)>;
// All of the above in order: parse, key, signature, claims.
Result<TokenIdentity> verify_id_token(std::string_view token, const TokenRules& rules, const KeyLookup& key_of,
                                      std::int64_t now_s);

}  // namespace jg
