#pragma once
// Ed25519 signatures through OpenSSL's EVP interface (design.md §7.3): the
// fleet's node keys sign every document a node writes and its audit heads.
// Keys and signatures travel as standard base64 (RFC 4648 §4, padded); the
// decoders are strict, since what they read comes from etcd, i.e. anyone
// with write access to it.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace jg {

using Ed25519Public = std::array<std::uint8_t, 32>;

// Strict standard base64 (padding required, no whitespace); nullopt on
// anything else.
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

class Ed25519Key {
public:
    // A fresh key from the system's random source.
    static Result<Ed25519Key> generate();
    // The 32-byte private seed (RFC 8032) of a key saved before.
    static Result<Ed25519Key> from_seed(std::string_view seed);

    // The private seed, for saving (32 bytes).
    std::string seed() const;
    const Ed25519Public& public_key() const { return pub_; }
    std::string public_base64() const;
    // The 64-byte signature of `message`, base64.
    std::string sign(std::string_view message) const;

private:
    std::shared_ptr<void> pkey_;  // EVP_PKEY*
    Ed25519Public pub_{};
};

// A public key written as base64 (32 bytes once decoded).
std::optional<Ed25519Public> parse_ed25519_public(std::string_view base64);
// True when `signature_b64` is a valid signature of `message` by `pub`;
// false for anything malformed.
bool ed25519_verify(const Ed25519Public& pub, std::string_view message, std::string_view signature_b64);

}  // namespace jg
