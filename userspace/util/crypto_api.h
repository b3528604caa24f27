#pragma once
// libcrypto (OpenSSL 3), loaded when a process first hashes, signs or checks
// a signature rather than linked: mapping and relocating libcrypto.so.3 at
// start took about 5 ms of every `jitgate` run on the benchmark VM (an empty
// program: 4.6 ms with libstdc++ alone, 9.6 ms with libcrypto too; its 18,000
// relocations fault in page after page), which is half of what
// `jitgate approve` costs a pipeline, and most commands (request, approve,
// status, grants) never need it.  The package depends on libssl3
// (CMakeLists.txt).  The members are OpenSSL's own functions under their own
// names, typed from OpenSSL's headers (decltype), so a call reads as the
// library documents it: jg::crypto().EVP_Digest(...).
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/opensslv.h>
#include <openssl/param_build.h>

#include "core/result.h"

// The table is typed from these headers and loads libcrypto.so.3: another
// major version's headers would type it for another library.
#if OPENSSL_VERSION_MAJOR != 3
#error "jitgate's libcrypto table (util/crypto_api.h) is for OpenSSL 3 (libcrypto.so.3)"
#endif

#define JG_CRYPTO_FUNCTIONS(X)           \
    X(BN_bin2bn)                         \
    X(BN_free)                           \
    X(BN_num_bits)                       \
    X(CRYPTO_free)                       \
    X(ECDSA_SIG_free)                    \
    X(ECDSA_SIG_new)                     \
    X(ECDSA_SIG_set0)                    \
    X(EVP_DecodeBlock)                   \
    X(EVP_Digest)                        \
    X(EVP_DigestSign)                    \
    X(EVP_DigestSignInit)                \
    X(EVP_DigestVerify)                  \
    X(EVP_DigestVerifyInit)              \
    X(EVP_EncodeBlock)                   \
    X(EVP_MD_CTX_free)                   \
    X(EVP_MD_CTX_new)                    \
    X(EVP_MD_fetch)                      \
    X(EVP_PKEY_CTX_free)                 \
    X(EVP_PKEY_CTX_new_from_name)        \
    X(EVP_PKEY_CTX_new_from_pkey)        \
    X(EVP_PKEY_Q_keygen)                 \
    X(EVP_PKEY_free)                     \
    X(EVP_PKEY_fromdata)                 \
    X(EVP_PKEY_fromdata_init)            \
    X(EVP_PKEY_get_raw_private_key)      \
    X(EVP_PKEY_get_raw_public_key)       \
    X(EVP_PKEY_new_raw_private_key)      \
    X(EVP_PKEY_new_raw_public_key)       \
    X(EVP_PKEY_public_check)             \
    X(EVP_sha256)                        \
    X(HMAC)                              \
    X(OSSL_PARAM_BLD_free)               \
    X(OSSL_PARAM_BLD_new)                \
    X(OSSL_PARAM_BLD_push_BN)            \
    X(OSSL_PARAM_BLD_to_param)           \
    X(OSSL_PARAM_construct_end)          \
    X(OSSL_PARAM_construct_octet_string) \
    X(OSSL_PARAM_construct_utf8_string)  \
    X(OSSL_PARAM_free)                   \
    X(OpenSSL_version)                   \
    X(i2d_ECDSA_SIG)

namespace jg {

struct CryptoApi {
#define JG_CRYPTO_MEMBER(name) decltype(&::name) name = nullptr;
    JG_CRYPTO_FUNCTIONS(JG_CRYPTO_MEMBER)
#undef JG_CRYPTO_MEMBER
};

// Loads `soname` and binds every function of the table, or says why not
// (libssl3 missing or too old: one sentence saying so).  Each call loads
// again: crypto() below is the one the code uses; this is for its test.
Result<CryptoApi> load_crypto(const char* soname);

// The table, loaded once on first use (thread-safe).  Without it a process can neither keep its
// audit chain nor check a signature, so it stops there: the sentence above on
// stderr, exit status 1 (an error, design.md §3; the daemon meets it while it
// starts, before it attaches anything).
const CryptoApi& crypto();

}  // namespace jg
