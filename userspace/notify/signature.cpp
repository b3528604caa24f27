#include "notify/signature.h"

#include <fmt/format.h>

#include "core/ed25519.h"
#include "util/crypto_api.h"

namespace jg::notify {

Result<std::string> decode_secret(std::string_view text) {
    constexpr std::string_view kPrefix = "whsec_";
    if (text.substr(0, kPrefix.size()) != kPrefix)
        return err(
            "the secret must be \"whsec_\" followed by base64 (as Standard Webhooks libraries write it)");
    auto key = base64_decode(text.substr(kPrefix.size()));
    if (!key) return err("the text after \"whsec_\" is not base64");
    if (key->size() < 16 || key->size() > 128)
        return err("the secret's key must be 16 to 128 bytes (24 to 172 base64 characters)");
    return *key;
}

std::string sign(std::string_view key, std::string_view id, std::int64_t timestamp, std::string_view body) {
    const std::string content = fmt::format("{}.{}.", id, timestamp) + std::string(body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    jg::crypto().HMAC(jg::crypto().EVP_sha256(), key.data(), static_cast<int>(key.size()),
                      reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
    return "v1," + base64_encode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

}  // namespace jg::notify
