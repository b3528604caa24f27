#include "identity/jwk.h"

#include <fmt/format.h>
#include <openssl/core_names.h>

#include <nlohmann/json.hpp>

#include "core/ed25519.h"
#include "core/protocol.h"
#include "util/crypto_api.h"

namespace jg {

namespace {

using json = nlohmann::json;
using BnPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
using BldPtr = std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)>;
using CtxPtr = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* k) {
    return std::shared_ptr<EVP_PKEY>(k, jg::crypto().EVP_PKEY_free);
}

// A string member of the key; empty when missing or not a string (json's
// value() would throw on a number where a string belongs).
std::string text(const json& k, const char* name) {
    auto it = k.find(name);
    return it != k.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A base64url member of the key, decoded; empty when missing or malformed.
std::string member(const json& k, const char* name) {
    std::string out;
    auto it = k.find(name);
    if (it == k.end() || !it->is_string() || !base64url_decode(it->get_ref<const std::string&>(), out))
        return {};
    return out;
}

// A public key from OSSL_PARAMs (EVP_PKEY_fromdata): the OpenSSL 3 way to
// build one from its numbers, no deprecated RSA_/EC_KEY calls.
std::shared_ptr<EVP_PKEY> from_params(const char* type, OSSL_PARAM* params) {
    CtxPtr ctx(jg::crypto().EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr),
               jg::crypto().EVP_PKEY_CTX_free);
    EVP_PKEY* key = nullptr;
    if (!ctx || jg::crypto().EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        jg::crypto().EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        return nullptr;
    return own(key);
}

std::shared_ptr<EVP_PKEY> rsa_key(const json& k) {
    const std::string n = member(k, "n"), e = member(k, "e");
    // Below 2048 bits an RSA key is not one to trust a login to.
    if (n.size() < 256 || n.size() > 1024 || e.empty() || e.size() > 8) return nullptr;
    auto bn = [](const std::string& s) {
        return BnPtr(jg::crypto().BN_bin2bn(reinterpret_cast<const unsigned char*>(s.data()),
                                            static_cast<int>(s.size()), nullptr),
                     jg::crypto().BN_free);
    };
    BnPtr bn_n = bn(n), bn_e = bn(e);
    BldPtr bld(jg::crypto().OSSL_PARAM_BLD_new(), jg::crypto().OSSL_PARAM_BLD_free);
    if (!bn_n || !bn_e || !bld || jg::crypto().BN_num_bits(bn_n.get()) < 2048 ||
        jg::crypto().OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
        jg::crypto().OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
        return nullptr;
    ParamPtr params(jg::crypto().OSSL_PARAM_BLD_to_param(bld.get()), jg::crypto().OSSL_PARAM_free);
    return params ? from_params("RSA", params.get()) : nullptr;
}

std::shared_ptr<EVP_PKEY> p256_key(const json& k) {
    if (text(k, "crv") != "P-256") return nullptr;
    const std::string x = member(k, "x"), y = member(k, "y");
    if (x.size() != 32 || y.size() != 32) return nullptr;
    // The uncompressed point 04 || x || y; fromdata checks it is on the curve.
    std::string point = "\x04" + x + y;
    char group[] = "prime256v1";
    OSSL_PARAM params[] = {
        jg::crypto().OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        jg::crypto().OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
        jg::crypto().OSSL_PARAM_construct_end()};
    auto key = from_params("EC", params);
    if (!key) return nullptr;
    // fromdata takes the point as given: check it is a valid public key.
    CtxPtr check(jg::crypto().EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr),
                 jg::crypto().EVP_PKEY_CTX_free);
    if (!check || jg::crypto().EVP_PKEY_public_check(check.get()) != 1) return nullptr;
    return key;
}

std::shared_ptr<EVP_PKEY> ed25519_key(const json& k) {
    if (text(k, "crv") != "Ed25519") return nullptr;
    const std::string x = member(k, "x");
    if (x.size() != 32) return nullptr;
    return own(jg::crypto().EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x.data()), x.size()));
}

// One JWKS entry as a Jwk, when it is a usable signing key.
std::optional<Jwk> usable(const json& k) {
    if (!k.is_object()) return std::nullopt;
    const auto kid = k.find("kid");
    if (kid == k.end() || !kid->is_string() || kid->get_ref<const std::string&>().empty() ||
        kid->get_ref<const std::string&>().size() > 256)
        return std::nullopt;
    if (k.contains("use") && k["use"] != "sig") return std::nullopt;
    const std::string kty = text(k, "kty");
    Jwk out;
    out.kid = kid->get<std::string>();
    if (kty == "RSA")
        out.alg = JwsAlg::RS256, out.key = rsa_key(k);
    else if (kty == "EC")
        out.alg = JwsAlg::ES256, out.key = p256_key(k);
    else if (kty == "OKP")
        out.alg = JwsAlg::EdDSA, out.key = ed25519_key(k);
    if (!out.key) return std::nullopt;
    // A key that declares its algorithm is used for that one only (RFC 7517 §4.4).
    if (auto a = k.find("alg"); a != k.end() && *a != jws_alg_name(out.alg)) return std::nullopt;
    return out;
}

}  // namespace

const char* jws_alg_name(JwsAlg a) {
    switch (a) {
        case JwsAlg::RS256: return "RS256";
        case JwsAlg::ES256: return "ES256";
        case JwsAlg::EdDSA: return "EdDSA";
    }
    return "?";
}

bool base64url_decode(std::string_view text, std::string& out) {
    if (text.size() % 4 == 1) return false;
    std::string std(text);
    for (char& c : std) {
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (c == '+' || c == '/' || c == '=')
            return false;  // the standard alphabet or padding: not base64url
    }
    std.append((4 - std.size() % 4) % 4, '=');
    auto bytes = base64_decode(std);  // strict and canonical
    if (!bytes) return false;
    out = std::move(*bytes);
    return true;
}

std::string base64url_encode(std::string_view bytes) {
    std::string s = base64_encode(bytes);
    while (!s.empty() && s.back() == '=') s.pop_back();
    for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
    return s;
}

Result<std::vector<Jwk>> parse_jwks(std::string_view text) {
    if (text.size() > kMaxJwksBytes)
        return err(fmt::format("the JWKS document is larger than {} KiB", kMaxJwksBytes / 1024));
    const json doc = parse_json_bounded(text);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
        return err("the JWKS document is not a JSON object with a \"keys\" list");
    std::vector<Jwk> out;
    for (const auto& k : doc["keys"]) {
        if (out.size() == kMaxJwks) break;
        if (auto j = usable(k)) out.push_back(std::move(*j));
    }
    if (out.empty())
        return err(
            "the JWKS document holds no RS256 (RSA 2048+), ES256 (P-256) or EdDSA (Ed25519) key with a kid");
    return out;
}

}  // namespace jg
