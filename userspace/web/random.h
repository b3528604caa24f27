#pragma once
// Unguessable identifiers (session ids, CSRF tokens, OIDC state, nonce and
// PKCE verifier): 256 bits from OpenSSL's CSPRNG, base64url without padding.
#include <string>
#include <string_view>

namespace jg::web {

// 32 random bytes as 43 base64url characters; aborts the process if the
// CSPRNG fails (fail closed: nothing guessable is ever handed out).
std::string random_token();

std::string base64url(std::string_view bytes);
// The bytes of unpadded base64url text into out; false when it is not that.
bool base64url_decode(std::string_view text, std::string& out);

// Equal without an early exit, so timing says nothing about where they differ.
bool equal_constant_time(std::string_view a, std::string_view b);

// PKCE S256 (RFC 7636): base64url(SHA-256(verifier)).
std::string pkce_challenge(std::string_view verifier);

}  // namespace jg::web
