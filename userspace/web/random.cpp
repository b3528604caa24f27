#include "web/random.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdio>
#include <cstdlib>

#include "core/ed25519.h"

namespace jg::web {

std::string random_token() {
    unsigned char buf[32];
    if (RAND_bytes(buf, sizeof(buf)) != 1) {
        std::fputs("jitgate-web: the system's random number generator failed; stopping\n", stderr);
        std::abort();
    }
    return base64url(std::string_view(reinterpret_cast<const char*>(buf), sizeof(buf)));
}

std::string base64url(std::string_view bytes) {
    std::string s = base64_encode(bytes);
    while (!s.empty() && s.back() == '=') s.pop_back();
    for (char& c : s) {
        if (c == '+')
            c = '-';
        else if (c == '/')
            c = '_';
    }
    return s;
}

bool base64url_decode(std::string_view text, std::string& out) {
    std::string s(text);
    for (char& c : s) {
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (c == '+' || c == '/' || c == '=')
            return false;
    }
    if (s.size() % 4 == 1) return false;
    while (s.size() % 4) s += '=';
    auto bytes = base64_decode(s);
    if (!bytes) return false;
    out = std::move(*bytes);
    return true;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
    if (a.size() != b.size() || a.empty()) return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string pkce_challenge(std::string_view verifier) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(verifier.data()), verifier.size(), md);
    return base64url(std::string_view(reinterpret_cast<const char*>(md), sizeof(md)));
}

}  // namespace jg::web
