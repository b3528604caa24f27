// libcrypto loaded on first use (util/crypto_api.h): the table comes whole
// and computes what OpenSSL computes; a library that cannot be loaded, or
// lacks a function, is one sentence naming what to install.
#include <doctest/doctest.h>

#include <string>

#include "core/audit_chain.h"
#include "util/crypto_api.h"

namespace test_crypto_api {

TEST_CASE("libcrypto's table is whole, and SHA-256 through it is FIPS 180-2's") {
    auto api = jg::load_crypto("libcrypto.so.3");
    REQUIRE_MESSAGE(api.ok(), (api.ok() ? "" : api.error()));
    const jg::CryptoApi& c = *api;
#define JG_CRYPTO_CHECK(name) CHECK_MESSAGE(bool(c.name), #name);
    JG_CRYPTO_FUNCTIONS(JG_CRYPTO_CHECK)
#undef JG_CRYPTO_CHECK
    CHECK(bool(jg::crypto().EVP_Digest == c.EVP_Digest));  // the first use loads the same library
    // The audit chain's hash, through jg::crypto().
    CHECK(jg::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("a libcrypto that cannot be loaded is one sentence naming the package") {
    auto api = jg::load_crypto("libjitgate-test-no-such-crypto.so.0");
    REQUIRE_FALSE(api.ok());
    CHECK(api.error().find("cannot load libcrypto (libjitgate-test-no-such-crypto.so.0: ") == 0);
    CHECK(api.error().find("install the libssl3 package") != std::string::npos);
}

TEST_CASE("a library without one of the functions is named with the function") {
    auto api = jg::load_crypto("libm.so.6");
    REQUIRE_FALSE(api.ok());
    CHECK(api.error() == "libm.so.6 has no BN_bin2bn; install libssl3 of Debian 12 or newer");
}

}  // namespace test_crypto_api
