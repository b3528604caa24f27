#pragma once
// Standard Webhooks signatures (https://www.standardwebhooks.com): the
// secret is "whsec_" + base64 of the key's bytes; a message is signed with
// HMAC-SHA256 over "ID.TIMESTAMP.BODY" and sent as
// webhook-signature: v1,BASE64.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace jg::notify {

// The key's bytes, or why the text is not a secret (one sentence).
Result<std::string> decode_secret(std::string_view text);
// "v1," + base64(HMAC-SHA256(key, id "." timestamp "." body)).
std::string sign(std::string_view key, std::string_view id, std::int64_t timestamp, std::string_view body);

}  // namespace jg::notify
