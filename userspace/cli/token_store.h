#pragma once
// The ID tokens `jitgate login URL` got, one file per jitgate-web URL under
// $XDG_CONFIG_HOME/jitgate (else ~/.config/jitgate): the directory mode
// 0700, each file 0600, written whole and renamed into place. A file that
// others could read, or that is not the user's own, is refused, not used.
#include <cstdint>
#include <optional>
#include <string>

#include "core/result.h"

namespace jg {

struct StoredToken {
    std::string url;  // the jitgate-web base URL, as normalise_web_url gives it
    std::string issuer, client_id, token_endpoint;
    std::string id_token;
    std::string refresh_token;    // empty when the issuer gave none
    std::int64_t expires_at = 0;  // the ID token's exp (Unix seconds)
    std::string user;             // the ID token's preferred_username, for messages
};

// The URL without trailing slashes; err unless https:// (http:// on loopback).
Result<std::string> normalise_web_url(const std::string& url);

// The directory the token files are in (not created).
Result<std::string> token_dir();
// The file for `url` (normalised).
Result<std::string> token_path(const std::string& url);

// The stored token for `url`; nullopt when there is none; err (one sentence,
// saying what to do) when the file is unsafe or unreadable.
Result<std::optional<StoredToken>> load_token(const std::string& url);
// Writes t (creating the directory 0700): a temporary file 0600 renamed over the old one.
Result<std::string> save_token(const StoredToken& t);
// Holds the renewal lock of `url`'s token (flock on a 0600 file beside it)
// until the returned descriptor is closed: two commands renewing at once
// would send the same refresh token twice, which providers that rotate
// refresh tokens take as theft and answer by revoking the sign-in.
Result<int> lock_token(const std::string& url);
// Removes the file for `url`; true when there was one.
Result<bool> forget_token(const std::string& url);

// The claims of an ID token that the CLI reads (not a verification: that is
// jitgated's): exp and the user name. Err when it is not a JWT with exp.
Result<bool> read_token_claims(const std::string& id_token, std::int64_t& exp, std::string& user);

}  // namespace jg
