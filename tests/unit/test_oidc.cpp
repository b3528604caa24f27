// OIDC ID tokens (design.md §8): JWKs read into OpenSSL keys, tokens minted
// here with OpenSSL (RS256, ES256 and EdDSA keys generated per run) and each
// check of identity/jwt.h failing alone; the verifier's key cache (discovery,
// refresh on an unknown kid, rate limit, back-off) with a fake fetch and
// clock; [identity.oidc] in the policy; "token" on the wire.
#include <doctest/doctest.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "core/policy.h"
#include "core/protocol.h"
#include "helpers.h"
#include "identity/jwk.h"
#include "identity/jwt.h"
#include "identity/oidc_verifier.h"

namespace test_oidc {
using namespace jg;
using json = nlohmann::json;

namespace {

constexpr std::int64_t kNow = 1'800'000'000;
const char* const kIssuer = "https://sso.example.com/realms/main";

using PkeyPtr = std::shared_ptr<EVP_PKEY>;

PkeyPtr keygen(const char* type, const char* arg = nullptr) {
    EVP_PKEY* k = nullptr;
    if (std::string(type) == "RSA")
        k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(arg ? std::stoul(arg) : 2048));
    else if (std::string(type) == "EC")
        k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", arg ? arg : "P-256");
    else
        k = EVP_PKEY_Q_keygen(nullptr, nullptr, type);
    REQUIRE(k != nullptr);
    return PkeyPtr(k, &EVP_PKEY_free);
}

std::string bn_param(EVP_PKEY* k, const char* name, int pad = 0) {
    BIGNUM* bn = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(k, name, &bn) == 1);
    std::string out(pad ? pad : BN_num_bytes(bn), '\0');
    if (pad)
        BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), pad);
    else
        BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(bn);
    return out;
}

// A key's public JWK, as a provider publishes it.
json public_jwk(const PkeyPtr& k, const std::string& kid) {
    json j = {{"kid", kid}, {"use", "sig"}};
    if (EVP_PKEY_is_a(k.get(), "RSA")) {
        j.update({{"kty", "RSA"},
                  {"n", base64url_encode(bn_param(k.get(), OSSL_PKEY_PARAM_RSA_N))},
                  {"e", base64url_encode(bn_param(k.get(), OSSL_PKEY_PARAM_RSA_E))}});
    } else if (EVP_PKEY_is_a(k.get(), "EC")) {
        j.update({{"kty", "EC"},
                  {"crv", "P-256"},
                  {"x", base64url_encode(bn_param(k.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32))},
                  {"y", base64url_encode(bn_param(k.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32))}});
    } else {
        unsigned char raw[32];
        size_t len = sizeof raw;
        REQUIRE(EVP_PKEY_get_raw_public_key(k.get(), raw, &len) == 1);
        j.update({{"kty", "OKP"},
                  {"crv", "Ed25519"},
                  {"x", base64url_encode(std::string(reinterpret_cast<char*>(raw), len))}});
    }
    return j;
}

// The JWS signature of `input` as JOSE writes it (ES256: r || s).
std::string sign(const PkeyPtr& k, const std::string& alg, const std::string& input) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    const EVP_MD* md = alg == "EdDSA" ? nullptr : EVP_sha256();
    REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, k.get()) == 1);
    size_t len = 0;
    const auto* in = reinterpret_cast<const unsigned char*>(input.data());
    REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()) == 1);
    std::string sig(len, '\0');
    REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in, input.size()) ==
            1);
    sig.resize(len);
    if (alg != "ES256") return sig;
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    REQUIRE(es != nullptr);
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(es);
    return raw;
}

std::string b64j(const json& j) { return base64url_encode(j.dump()); }

json good_claims() {
    return {{"iss", kIssuer},
            {"sub", "f81d4fae-7dec"},
            {"aud", "jitgate"},
            {"azp", "jitgate"},
            {"iat", kNow - 5},
            {"nbf", kNow - 5},
            {"exp", kNow + 300},
            {"preferred_username", "alice"},
            {"groups", {"dba", "/nested/path", "oncall"}}};
}

// A provider of the test: three keys and the tokens they sign.
struct Provider {
    std::map<std::string, PkeyPtr> keys = {
        {"rsa-1", keygen("RSA")}, {"ec-1", keygen("EC")}, {"ed-1", keygen("ED25519")}};
    std::map<std::string, std::string> alg_of = {{"rsa-1", "RS256"}, {"ec-1", "ES256"}, {"ed-1", "EdDSA"}};

    std::string jwks() const {
        json keys_json = json::array();
        for (const auto& [kid, k] : keys) keys_json.push_back(public_jwk(k, kid));
        return json{{"keys", keys_json}}.dump();
    }
    std::string token(const std::string& kid, const json& claims = good_claims(),
                      json header = nullptr) const {
        if (header.is_null()) header = {{"alg", alg_of.at(kid)}, {"kid", kid}, {"typ", "JWT"}};
        const std::string input = b64j(header) + "." + b64j(claims);
        return input + "." + base64url_encode(sign(keys.at(kid), alg_of.at(kid), input));
    }
};

const Provider& provider() {
    static const Provider p;
    return p;
}

TokenRules rules() { return TokenRules{kIssuer, "jitgate", "jitgate", "preferred_username", "groups"}; }

// Verification against the provider's JWKS, at kNow unless told.
Result<TokenIdentity> verify(const std::string& token, std::int64_t now = kNow, TokenRules r = rules()) {
    static const std::vector<Jwk> keys = testing::must(parse_jwks(provider().jwks()));
    return verify_id_token(
        token, r,
        [&](const std::string& kid, std::string*) -> const Jwk* {
            for (const auto& k : keys)
                if (k.kid == kid) return &k;
            return nullptr;
        },
        now);
}

std::string refusal(const std::string& token, std::int64_t now = kNow) {
    auto r = verify(token, now);
    return r ? std::string("(accepted)") : r.error();
}

// Replaces one claim (null: removes it) in good claims.
json with(const std::string& name, const json& value) {
    json c = good_claims();
    if (value.is_null())
        c.erase(name);
    else
        c[name] = value;
    return c;
}

}  // namespace

TEST_SUITE("oidc jwk") {
    TEST_CASE("a provider's RSA, P-256 and Ed25519 keys are read; others are skipped") {
        auto keys = testing::must(parse_jwks(provider().jwks()));
        CHECK(keys.size() == 3);
        json doc = json::parse(provider().jwks());
        doc["keys"].push_back({{"kty", "RSA"}, {"kid", "enc"}, {"use", "enc"}, {"n", "AQAB"}, {"e", "AQAB"}});
        doc["keys"].push_back(public_jwk(keygen("RSA", "1024"), "small-rsa"));
        json p384 = public_jwk(keygen("EC", "P-384"), "p384");
        doc["keys"].push_back(p384);
        json nokid = public_jwk(provider().keys.at("ed-1"), "x");
        nokid.erase("kid");
        doc["keys"].push_back(nokid);
        json wrong_alg = public_jwk(provider().keys.at("rsa-1"), "declares-es256");
        wrong_alg["alg"] = "ES256";
        doc["keys"].push_back(wrong_alg);
        doc["keys"].push_back({{"kty", "oct"}, {"kid", "hmac"}, {"k", "c2VjcmV0"}});
        doc["keys"].push_back({{"kty", 5}, {"kid", "odd"}, {"crv", json::array()}});
        doc["keys"].push_back({{"kty", "EC"}, {"kid", "odd-crv"}, {"crv", 7}, {"x", 1}});
        doc["keys"].push_back("not an object");
        keys = testing::must(parse_jwks(doc.dump()));
        CHECK(keys.size() == 3);  // the enc, 1024-bit, P-384, kid-less, mislabelled and oct keys skipped
    }

    TEST_CASE("an EC point not on the curve is no key") {
        json k = public_jwk(provider().keys.at("ec-1"), "bad-point");
        std::string y;
        REQUIRE(base64url_decode(k["y"].get<std::string>(), y));
        y[31] ^= 1;
        k["y"] = base64url_encode(y);
        CHECK_FALSE(parse_jwks(json{{"keys", {k}}}.dump()).ok());
    }

    TEST_CASE("a document that is not a JWKS, or holds no usable key, is an error") {
        CHECK(parse_jwks("not json").error().find("not a JSON object") != std::string::npos);
        CHECK_FALSE(parse_jwks(R"({"keys": {}})").ok());
        CHECK(parse_jwks(R"({"keys": []})").error().find("holds no RS256") != std::string::npos);
        CHECK_FALSE(parse_jwks(std::string(kMaxJwksBytes + 1, ' ')).ok());
    }

    TEST_CASE("base64url is strict: no padding, no standard alphabet, canonical only") {
        std::string out;
        CHECK(base64url_decode("aGk", out));
        CHECK(out == "hi");
        CHECK_FALSE(base64url_decode("aGk=", out));
        CHECK_FALSE(base64url_decode("a+8", out));
        CHECK_FALSE(base64url_decode("a/8", out));
        CHECK_FALSE(base64url_decode("aGl", out));  // unused bits set: another spelling of "hi"
        CHECK_FALSE(base64url_decode("a", out));
        CHECK(base64url_encode("\xfb\xff") == "-_8");
    }
}

TEST_SUITE("oidc token") {
    TEST_CASE("good tokens of each algorithm name their user, subject and groups") {
        for (const char* kid : {"rsa-1", "ec-1", "ed-1"}) {
            CAPTURE(kid);
            auto id = testing::must(verify(provider().token(kid)));
            CHECK(id.user == "alice");
            CHECK(id.subject == "f81d4fae-7dec");
            CHECK(id.issuer == kIssuer);
            CHECK(id.groups == std::vector<std::string>{"dba", "oncall"});  // "/nested/path" is no @group
            CHECK(id.expires_s == kNow + 300);
        }
    }

    TEST_CASE("the algorithm: none, HS256 (the public key as its secret) and others are refused") {
        const auto& p = provider();
        const std::string claims = b64j(good_claims());
        const std::string none = b64j({{"alg", "none"}, {"kid", "rsa-1"}}) + "." + claims + ".";
        CHECK(refusal(none).find("the token's algorithm 'none' is not accepted") != std::string::npos);
        CHECK(refusal(b64j({{"alg", "none"}, {"kid", "rsa-1"}}) + "." + claims + ".AAAA")
                  .find("'none' is not accepted") != std::string::npos);
        // The classic confusion: HMAC keyed with the RSA key's public JWK.
        const std::string hs_input = b64j({{"alg", "HS256"}, {"kid", "rsa-1"}}) + "." + claims;
        const std::string secret = public_jwk(p.keys.at("rsa-1"), "rsa-1").dump();
        unsigned char mac[32];
        size_t mac_len = sizeof mac;
        REQUIRE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                          reinterpret_cast<const unsigned char*>(hs_input.data()), hs_input.size(), mac,
                          sizeof mac, &mac_len) != nullptr);
        const std::string hs =
            hs_input + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), 32));
        CHECK(refusal(hs).find("the token's algorithm 'HS256' is not accepted") != std::string::npos);
        for (const char* alg : {"RS512", "PS256", "ES384", "Ed25519", "rs256", ""})
            CHECK(refusal(b64j({{"alg", alg}, {"kid", "rsa-1"}}) + "." + claims + ".AAAA")
                      .find("is not accepted") != std::string::npos);
        CHECK(refusal(b64j({{"kid", "rsa-1"}}) + "." + claims + ".AAAA").find("is not accepted") !=
              std::string::npos);
    }

    TEST_CASE("a token signed by one key is refused under another kid or algorithm") {
        const auto& p = provider();
        // An EdDSA key's signature presented as the RSA key's.
        json h = {{"alg", "EdDSA"}, {"kid", "rsa-1"}};
        const std::string input = b64j(h) + "." + b64j(good_claims());
        const std::string t = input + "." + base64url_encode(sign(p.keys.at("ed-1"), "EdDSA", input));
        CHECK(refusal(t).find("is not the one of its key 'rsa-1'") != std::string::npos);
        // An ES256 token naming the other EC-less key kid: the wrong key, signature fails.
        json h2 = {{"alg", "RS256"}, {"kid", "rsa-1"}};
        const std::string in2 = b64j(h2) + "." + b64j(good_claims());
        const PkeyPtr other = keygen("RSA");
        const std::string t2 = in2 + "." + base64url_encode(sign(other, "RS256", in2));
        CHECK(refusal(t2) == "the token's signature does not verify with key 'rsa-1'");
    }

    TEST_CASE("kid: missing, unknown, too long; crit; the shape") {
        const auto& p = provider();
        CHECK(refusal(p.token("rsa-1", good_claims(), {{"alg", "RS256"}})) ==
              "the token's header names no key (kid)");
        CHECK(refusal(p.token("rsa-1", good_claims(), {{"alg", "RS256"}, {"kid", "rotated-away"}})) ==
              "the token's key 'rotated-away' is not one of the issuer's keys (JWKS)");
        CHECK(refusal(p.token("rsa-1", good_claims(), {{"alg", "RS256"}, {"kid", std::string(300, 'k')}})) ==
              "the token's header names no key (kid)");
        CHECK(
            refusal(p.token("rsa-1", good_claims(), {{"alg", "RS256"}, {"kid", "rsa-1"}, {"crit", {"exp"}}}))
                .find("critical header") != std::string::npos);
        CHECK(refusal("abc").find("not a signed JWT") != std::string::npos);
        CHECK(refusal("a.b.c.d").find("not a signed JWT") != std::string::npos);
        CHECK(refusal("!!.e30.AAAA").find("header is not base64url-encoded JSON") != std::string::npos);
        CHECK(refusal(b64j({{"alg", "RS256"}, {"kid", "rsa-1"}}) + ".W10.AAAA").find("claims are not") !=
              std::string::npos);  // a JSON list, not an object
        const std::string good = p.token("rsa-1");
        CHECK(refusal(good.substr(0, good.rfind('.') + 1)).find("signature is missing") != std::string::npos);
        CHECK(refusal(good + std::string(kMaxIdTokenBytes, 'A')).find("longer than 16384 bytes") !=
              std::string::npos);
    }

    TEST_CASE("an altered payload or signature does not verify, for each algorithm") {
        for (const char* kid : {"rsa-1", "ec-1", "ed-1"}) {
            CAPTURE(kid);
            const std::string t = provider().token(kid);
            const auto d1 = t.find('.'), d2 = t.rfind('.');
            json c = good_claims();
            c["preferred_username"] = "root";
            const std::string altered = t.substr(0, d1 + 1) + b64j(c) + t.substr(d2);
            CHECK(refusal(altered).find("signature does not verify") != std::string::npos);
            std::string sig;
            REQUIRE(base64url_decode(t.substr(d2 + 1), sig));
            sig[sig.size() / 2] ^= 1;
            CHECK(refusal(t.substr(0, d2 + 1) + base64url_encode(sig)).find("signature does not verify") !=
                  std::string::npos);
        }
        // ES256 in DER (not JOSE's r || s) is refused, not converted.
        const std::string t = provider().token("ec-1");
        const std::string input = t.substr(0, t.rfind('.'));
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
        REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                                   provider().keys.at("ec-1").get()) == 1);
        size_t len = 80;
        std::string der(80, '\0');
        REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len,
                               reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
        der.resize(len);
        CHECK(refusal(input + "." + base64url_encode(der)).find("is not 64 bytes") != std::string::npos);
    }

    TEST_CASE("iss exactly") {
        const auto& p = provider();
        CHECK(refusal(p.token("rsa-1", with("iss", std::string(kIssuer) + "/"))) ==
              "the token's issuer (iss) is not 'https://sso.example.com/realms/main'");
        CHECK(refusal(p.token("rsa-1", with("iss", "https://evil.example.com/realms/main"))).find("issuer") !=
              std::string::npos);
        CHECK(refusal(p.token("rsa-1", with("iss", nullptr))).find("issuer (iss)") != std::string::npos);
    }

    TEST_CASE("aud: a string, or a list holding it; azp names the client") {
        const auto& p = provider();
        CHECK(refusal(p.token("rsa-1", with("aud", "other"))) ==
              "the token's audience (aud) does not hold 'jitgate'");
        CHECK(refusal(p.token("rsa-1", with("aud", nullptr))).find("audience") != std::string::npos);
        CHECK(verify(p.token("rsa-1", with("aud", {"other", "jitgate"}))).ok());
        CHECK(refusal(p.token("rsa-1", with("aud", {"other", "more"}))).find("audience") !=
              std::string::npos);
        json c = with("aud", {"other", "jitgate"});
        c.erase("azp");
        CHECK(refusal(p.token("rsa-1", c)).find("several audiences") != std::string::npos);
        CHECK(refusal(p.token("rsa-1", with("azp", "other-client"))).find("issued to another client") !=
              std::string::npos);
        // A configured audience other than the client id.
        TokenRules r = rules();
        r.audience = "jitgate-api";
        CHECK(verify(p.token("rsa-1", with("aud", {"jitgate-api", "jitgate"})), kNow, r).ok());
        CHECK_FALSE(verify(p.token("rsa-1"), kNow, r).ok());
    }

    TEST_CASE("exp, nbf and iat, each with 60 s of skew") {
        const auto& p = provider();
        const std::string t = p.token("rsa-1");
        CHECK(verify(t, kNow + 300 + 59).ok());
        CHECK(refusal(t, kNow + 300 + 61).find("the token expired at") != std::string::npos);
        CHECK(refusal(p.token("rsa-1", with("exp", nullptr))) == "the token has no expiry time (exp)");
        CHECK(refusal(p.token("rsa-1", with("exp", "tomorrow"))) == "the token has no expiry time (exp)");
        CHECK(verify(p.token("rsa-1", with("nbf", kNow + 59))).ok());
        CHECK(refusal(p.token("rsa-1", with("nbf", kNow + 61))).find("is not valid before") !=
              std::string::npos);
        CHECK(refusal(p.token("rsa-1", with("nbf", "soon"))).find("(nbf) is not a number") !=
              std::string::npos);
        CHECK(verify(p.token("rsa-1", with("nbf", nullptr))).ok());  // nbf is optional
        CHECK(verify(p.token("rsa-1", with("iat", kNow + 59))).ok());
        CHECK(refusal(p.token("rsa-1", with("iat", kNow + 61))).find("issued in the future") !=
              std::string::npos);
        CHECK(refusal(p.token("rsa-1", with("iat", nullptr))) == "the token has no issue time (iat)");
        CHECK(verify(p.token("rsa-1", with("exp", double(kNow) + 300.5)))
                  .ok());  // NumericDate may be a fraction
    }

    TEST_CASE("sub, the user name claim and the groups claim") {
        const auto& p = provider();
        CHECK(refusal(p.token("rsa-1", with("sub", nullptr))).find("subject (sub)") != std::string::npos);
        CHECK(refusal(p.token("rsa-1", with("sub", "a\nb"))).find("subject (sub)") != std::string::npos);
        CHECK(
            refusal(p.token("rsa-1", with("preferred_username", nullptr))) ==
            "the token's preferred_username claim is missing or not a user name (1-32 letters, digits, '_', "
            "'-', '.', '$')");
        for (const json& bad : {json("alice smith"), json("@dba"), json(""), json(std::string(33, 'a')),
                                json(7), json("al\x1b[31mice")})
            CHECK(refusal(p.token("rsa-1", with("preferred_username", bad))).find("not a user name") !=
                  std::string::npos);
        json c = good_claims();
        c["email"] = "bob";
        c["roles"] = "dba";
        TokenRules r = rules();
        r.username_claim = "email";
        r.groups_claim = "roles";
        auto id = testing::must(verify(p.token("rsa-1", c), kNow, r));
        CHECK(id.user == "bob");
        CHECK(id.groups == std::vector<std::string>{"dba"});  // a single string is one group
        CHECK(testing::must(verify(p.token("rsa-1", with("groups", nullptr)))).groups.empty());
    }
}

TEST_SUITE("oidc verifier") {
    // A provider behind a fake network, counting what was fetched.
    struct Net {
        std::map<std::string, std::string> docs;
        std::map<std::string, int> gets;
        bool down = false;
        OidcVerifier::Fetch fetch() {
            return [this](const std::string& url) -> Result<std::string> {
                ++gets[url];
                if (down) return err("GET " + url + " failed: Connection refused");
                auto it = docs.find(url);
                if (it == docs.end()) return err("GET " + url + " answered HTTP 404");
                return it->second;
            };
        }
    };
    struct FakeSteady {
        std::chrono::steady_clock::time_point t{std::chrono::hours(1000)};
        OidcVerifier::Clock clock() {
            return [this] { return t; };
        }
    };
    OidcSettings settings() {
        OidcSettings s;
        s.issuer = kIssuer;
        s.client_id = s.audience = "jitgate";
        return s;
    }
    const std::string kDiscovery = std::string(kIssuer) + "/.well-known/openid-configuration";
    const std::string kJwks = std::string(kIssuer) + "/protocol/openid-connect/certs";

    TEST_CASE("keys come from the discovery document's jwks_uri, cached") {
        Net net;
        net.docs[kDiscovery] = json{{"issuer", kIssuer}, {"jwks_uri", kJwks}}.dump();
        net.docs[kJwks] = provider().jwks();
        FakeSteady clk;
        OidcVerifier v(settings(), net.fetch(), clk.clock());
        CHECK(v.verify(provider().token("ec-1"), kNow).ok());
        CHECK(v.verify(provider().token("rsa-1"), kNow).ok());
        CHECK(net.gets[kDiscovery] == 1);
        CHECK(net.gets[kJwks] == 1);
    }

    TEST_CASE("unknown kids refresh the keys at most once per 10 s; a rotated key is then found") {
        Net net;
        net.docs[kDiscovery] = json{{"issuer", kIssuer}, {"jwks_uri", kJwks}}.dump();
        json only_rsa = json::parse(provider().jwks());
        only_rsa["keys"].erase(std::remove_if(only_rsa["keys"].begin(), only_rsa["keys"].end(),
                                              [](const json& k) { return k["kid"] != "rsa-1"; }),
                               only_rsa["keys"].end());
        net.docs[kJwks] = only_rsa.dump();
        FakeSteady clk;
        OidcVerifier v(settings(), net.fetch(), clk.clock());
        REQUIRE(v.refresh().ok());
        CHECK(net.gets[kJwks] == 1);
        // The provider rotates: ec-1 is published now.
        net.docs[kJwks] = provider().jwks();
        for (int i = 0; i < 50; ++i) CHECK_FALSE(v.verify(provider().token("ec-1"), kNow).ok());
        CHECK(net.gets[kJwks] == 1);  // within 10 s of the last fetch: none
        clk.t += std::chrono::seconds(10);
        CHECK(v.verify(provider().token("ec-1"), kNow).ok());
        CHECK(net.gets[kJwks] == 2);
        for (int i = 0; i < 50; ++i)
            CHECK(v.verify(provider().token("rsa-1", good_claims(), {{"alg", "RS256"}, {"kid", "made-up"}}),
                           kNow)
                      .error()
                      .find("is not one of the issuer's keys") != std::string::npos);
        CHECK(net.gets[kJwks] == 2);
    }

    TEST_CASE("a provider that fails is asked less and less often; the keys it gave stay in use") {
        Net net;
        net.docs[kDiscovery] = json{{"issuer", kIssuer}, {"jwks_uri", kJwks}}.dump();
        net.docs[kJwks] = provider().jwks();
        FakeSteady clk;
        OidcVerifier v(settings(), net.fetch(), clk.clock());
        REQUIRE(v.refresh().ok());
        net.down = true;
        const int before = net.gets[kJwks] + net.gets[kDiscovery];
        // Every second for 10 minutes, an unknown kid: 10, 20, 40, 80, 160, 300 s apart.
        for (int s = 0; s < 600; ++s) {
            clk.t += std::chrono::seconds(1);
            (void)v.verify(provider().token("rsa-1", good_claims(), {{"alg", "RS256"}, {"kid", "x"}}), kNow);
        }
        CHECK(net.gets[kJwks] + net.gets[kDiscovery] - before <= 7);
        CHECK(v.verify(provider().token("ed-1"), kNow).ok());  // cached keys still verify
    }

    TEST_CASE("never reached: the token is refused naming why, and nothing is fetched in a loop") {
        Net net;
        net.down = true;
        FakeSteady clk;
        OidcVerifier v(settings(), net.fetch(), clk.clock());
        CHECK_FALSE(v.refresh().ok());
        auto r = v.verify(provider().token("rsa-1"), kNow);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().find("the issuer's keys could not be fetched (GET ") != std::string::npos);
        CHECK(net.gets[kDiscovery] == 1);
    }

    TEST_CASE("the discovery document must name the issuer, and an https jwks_uri") {
        Net net;
        FakeSteady clk;
        net.docs[kDiscovery] = json{{"issuer", "https://evil.example.com"}, {"jwks_uri", kJwks}}.dump();
        OidcVerifier v(settings(), net.fetch(), clk.clock());
        CHECK(v.refresh().error().find("names another issuer") != std::string::npos);
        net.docs[kDiscovery] = json{{"issuer", kIssuer}, {"jwks_uri", "http://sso.example.com/certs"}}.dump();
        OidcVerifier v2(settings(), net.fetch(), clk.clock());
        CHECK(v2.refresh().error().find("not an https URL") != std::string::npos);
        net.docs[kDiscovery] = json{{"issuer", kIssuer}}.dump();
        OidcVerifier v3(settings(), net.fetch(), clk.clock());
        CHECK(v3.refresh().error().find("has no jwks_uri") != std::string::npos);
    }

    TEST_CASE("jwks_file: the keys from a file, nothing fetched") {
        testing::TempDir dir;
        testing::write_file(dir.file("jwks.json"), provider().jwks());
        Net net;
        FakeSteady clk;
        OidcSettings s = settings();
        s.jwks_file = dir.file("jwks.json");
        OidcVerifier v(s, net.fetch(), clk.clock());
        CHECK(v.verify(provider().token("ed-1"), kNow).ok());
        CHECK(net.gets.empty());
        s.jwks_file = dir.file("missing.json");
        OidcVerifier v2(s, net.fetch(), clk.clock());
        CHECK(v2.verify(provider().token("ed-1"), kNow).error().find("cannot read identity.oidc.jwks_file") !=
              std::string::npos);
    }
}

TEST_SUITE("oidc config") {
    PolicyLoad load(const std::string& text) { return parse_policy(text, "p.toml"); }

    TEST_CASE("[identity.oidc] with its defaults") {
        auto l = load(
            "[identity.oidc]\nissuer = \"https://sso.example.com/realms/main\"\nclient_id = \"jitgate\"\n");
        REQUIRE(l.ok());
        CHECK(l.policy.oidc.enabled());
        CHECK(l.policy.oidc.audience == "jitgate");
        CHECK(l.policy.oidc.username_claim == "preferred_username");
        CHECK(l.policy.oidc.groups_claim == "groups");
        CHECK_FALSE(load("").policy.oidc.enabled());
        l = load(
            "[identity.oidc]\nissuer = \"http://127.0.0.1:8080\"\nclient_id = \"c\"\naudience = \"api\"\n"
            "username_claim = \"email\"\ngroups_claim = \"roles\"\njwks_file = \"/etc/jitgate/jwks.json\"\n");
        REQUIRE(l.ok());
        CHECK(l.policy.oidc.audience == "api");
        CHECK(l.policy.oidc.jwks_file == "/etc/jitgate/jwks.json");
        CHECK(load("[identity.oidc]\nissuer = \"http://[::1]:9\"\nclient_id = \"c\"\n").ok());
    }

    TEST_CASE("each problem with its line") {
        auto errs = [&](const std::string& t) {
            auto l = load(t);
            std::string all;
            for (auto& e : l.errors) all += e + "\n";
            return all;
        };
        CHECK(errs("[identity.oidc]\nissuer = \"http://sso.example.com\"\nclient_id = \"c\"\n") ==
              "p.toml:2: identity.oidc.issuer must use https (http:// is accepted only on loopback, for "
              "tests)\n");
        CHECK(errs("[identity.oidc]\nissuer = \"ftp://x\"\nclient_id = \"c\"\n")
                  .find("p.toml:2: identity.oidc.issuer "
                        "must be an https:// URL") != std::string::npos);
        CHECK(errs("[identity.oidc]\nissuer = \"https://x/?a=1\"\nclient_id = \"c\"\n").find("p.toml:2:") !=
              std::string::npos);
        CHECK(errs("[identity.oidc]\nissuer = \"https://x\"\n") ==
              "p.toml:1: [identity.oidc] needs client_id, the client registered with the provider\n");
        CHECK(errs("[identity.oidc]\nclient_id = \"c\"\n") ==
              "p.toml:1: [identity.oidc] needs issuer, the OpenID provider's URL\n");
        CHECK(errs("[identity.oidc]\nissuer = \"https://x\"\nclient_id = \"c\"\nscope = \"openid\"\n") ==
              "p.toml:4: unknown key 'scope' in [identity.oidc]\n");
        CHECK(errs("[identity.oidc]\nissuer = \"https://x\"\nclient_id = \"c\"\nusername_claim = \"a b\"\n")
                  .find("p.toml:4: identity.oidc.username_claim must name a claim") != std::string::npos);
        CHECK(
            errs("[identity.oidc]\nissuer = \"https://x\"\nclient_id = \"c\"\njwks_file = \"keys.json\"\n") ==
            "p.toml:4: identity.oidc.jwks_file must be an absolute path\n");
        CHECK(errs("[identity]\nsaml = 1\n") == "p.toml:2: unknown key 'saml' in [identity]\n");
        CHECK_FALSE(load("[identity.oidc]\nissuer = \"https://x\"\n").policy.oidc.enabled());
    }
}

TEST_SUITE("oidc wire") {
    TEST_CASE("a request may carry a token, a string of bounded size") {
        auto r = parse_request(R"({"id":1,"op":"list","token":"a.b.c"})");
        REQUIRE(r.ok());
        CHECK(r->token == "a.b.c");
        CHECK_FALSE(parse_request(R"({"id":1,"op":"list"})")->token);
        WireError w;
        CHECK_FALSE(parse_request(R"({"id":1,"op":"list","token":7})", &w).ok());
        CHECK(w.message == "\"token\" must be an ID token (a non-empty string)");
        CHECK_FALSE(parse_request(R"({"id":1,"op":"list","token":""})").ok());
        const std::string big =
            R"({"id":1,"op":"list","token":")" + std::string(kMaxTokenBytes + 1, 'a') + "\"}";
        CHECK(parse_request(big, &w).error() == "\"token\" is longer than 16384 bytes");
        CHECK(exit_code_for(code::kAuthFailed) == 3);
    }
}

}  // namespace test_oidc
