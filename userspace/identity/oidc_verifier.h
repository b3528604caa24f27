#pragma once
// jitgated's verifier of OIDC ID tokens ([identity.oidc], design.md §8):
// the rules of identity/jwt.h with the issuer's keys, read from jwks_file
// or fetched from the issuer's discovery document and its jwks_uri, cached.
//
// Fetching happens on the daemon's thread, inside the request that needs
// it, so it is bounded and rare: each GET has a 1.5 s connect and 2.5 s
// total deadline (identity/http_get.h), the discovery document is fetched
// once and again only after its jwks_uri failed, and the keys are fetched
// again only when a token names a kid not among them (or they are an hour
// old), at most once per 10 s, backing off to once per 5 min while the
// provider fails.  A flood of tokens with made-up kids therefore costs one
// bounded fetch per 10 s, and none beyond that: those tokens are refused
// from the cache.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/policy.h"
#include "core/result.h"
#include "identity/jwk.h"
#include "identity/jwt.h"

namespace jg {

class OidcVerifier {
public:
    using Fetch = std::function<Result<std::string>(const std::string& url)>;
    using Clock = std::function<std::chrono::steady_clock::time_point()>;

    static constexpr std::chrono::seconds kMinRefresh{10};
    static constexpr std::chrono::seconds kMaxBackoff{300};
    static constexpr std::chrono::seconds kMaxKeyAge{3600};

    // `fetch` and `clock` default to libcurl (http_get) and the steady clock.
    explicit OidcVerifier(OidcSettings s, Fetch fetch = {}, Clock clock = {});

    const OidcSettings& settings() const { return s_; }
    // The identity `token` proves at Unix time now_s, or the check it failed.
    Result<TokenIdentity> verify(std::string_view token, std::int64_t now_s);
    // Reads or fetches the keys now (at start and after a reload): the
    // error when they could not be had (tokens then wait for the next try).
    Result<bool> refresh();
    // How many times the keys were read or fetched (for tests).
    int loads() const { return loads_; }

private:
    const Jwk* lookup(const std::string& kid, std::string* why);
    bool may_refresh() const;
    Result<std::vector<Jwk>> load();
    Result<std::string> discover();

    OidcSettings s_;
    TokenRules rules_;
    Fetch fetch_;
    Clock clock_;
    std::vector<Jwk> keys_;
    std::string jwks_uri_;  // from the discovery document
    bool tried_ = false;
    std::chrono::steady_clock::time_point last_try_{}, last_ok_{};
    std::chrono::seconds backoff_ = kMinRefresh;
    std::string last_error_;
    int loads_ = 0;
};

}  // namespace jg
