#pragma once
// JSON Web Keys (RFC 7517) as OpenSSL public keys: the keys an OpenID
// provider signs ID tokens with, read from its JWKS document (or a file).
// Only signature keys of the three algorithms jitgate accepts (RS256,
// ES256, EdDSA with Ed25519): RSA of 2048 bits or more, EC on P-256, OKP
// Ed25519.  Other keys in a JWKS (encryption keys, other curves) are
// skipped, not errors: providers publish them beside the signing keys.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace jg {

// The algorithms jitgate verifies (never none, never HS*).
enum class JwsAlg { RS256, ES256, EdDSA };
const char* jws_alg_name(JwsAlg a);

struct Jwk {
    std::string kid;
    JwsAlg alg = JwsAlg::RS256;  // the only algorithm this key verifies (from kty and crv)
    std::shared_ptr<EVP_PKEY> key;
};

// A JWKS document is at most this long, with at most this many keys.
inline constexpr std::size_t kMaxJwksBytes = 256 * 1024;
inline constexpr std::size_t kMaxJwks = 64;

// The usable keys of a JWKS document ({"keys": [...]}); an error when it is
// not one, or when it holds no usable key.
Result<std::vector<Jwk>> parse_jwks(std::string_view text);

// base64url without padding (RFC 7515 §2), strict: nothing else decodes.
bool base64url_decode(std::string_view text, std::string& out);
std::string base64url_encode(std::string_view bytes);

}  // namespace jg
