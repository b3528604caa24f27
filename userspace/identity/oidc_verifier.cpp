#include "identity/oidc_verifier.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/protocol.h"
#include "core/url.h"
#include "identity/http_get.h"

namespace jg {

namespace {

Result<std::string> read_small_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return err(fmt::format("cannot read identity.oidc.jwks_file {}", path));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > kMaxJwksBytes)
        return err(
            fmt::format("identity.oidc.jwks_file {} is larger than {} KiB", path, kMaxJwksBytes / 1024));
    return text;
}

}  // namespace

OidcVerifier::OidcVerifier(OidcSettings s, Fetch fetch, Clock clock)
    : s_(std::move(s)), fetch_(std::move(fetch)), clock_(std::move(clock)) {
    if (!fetch_) fetch_ = [](const std::string& url) { return http_get(url); };
    if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
    rules_ = TokenRules{s_.issuer, s_.client_id, s_.audience.empty() ? s_.client_id : s_.audience,
                        s_.username_claim, s_.groups_claim};
}

Result<std::string> OidcVerifier::discover() {
    std::string base = s_.issuer;
    if (!base.empty() && base.back() == '/') base.pop_back();
    const std::string url = base + "/.well-known/openid-configuration";
    auto body = fetch_(url);
    if (!body) return err(body.error());
    const auto doc = parse_json_bounded(*body);
    if (!doc.is_object()) return err(fmt::format("{} is not a JSON object", url));
    // OIDC Discovery §4.3: the document must name exactly the issuer asked.
    if (doc.value("issuer", json()) != s_.issuer)
        return err(
            fmt::format("the discovery document at {} names another issuer than '{}'", url, s_.issuer));
    const auto uri = doc.find("jwks_uri");
    if (uri == doc.end() || !uri->is_string()) return err(fmt::format("{} has no jwks_uri", url));
    const std::string u = uri->get<std::string>();
    const bool https = u.rfind("https://", 0) == 0;
    const bool local_http =
        u.rfind("http://", 0) == 0 && is_loopback_host(url_host(u)) && is_loopback_host(url_host(s_.issuer));
    if (u.size() > 1024 || url_host(u).empty() || !(https || local_http))
        return err(fmt::format("the discovery document's jwks_uri is not an https URL"));
    return u;
}

Result<std::vector<Jwk>> OidcVerifier::load() {
    ++loads_;
    if (!s_.jwks_file.empty()) {
        auto text = read_small_file(s_.jwks_file);
        if (!text) return err(text.error());
        auto keys = parse_jwks(*text);
        if (!keys) return err(fmt::format("identity.oidc.jwks_file {}: {}", s_.jwks_file, keys.error()));
        return keys;
    }
    if (jwks_uri_.empty()) {
        auto uri = discover();
        if (!uri) return err(uri.error());
        jwks_uri_ = *uri;
    }
    auto body = fetch_(jwks_uri_);
    if (!body) {
        jwks_uri_.clear();  // it may have moved: ask the discovery document next time
        return err(body.error());
    }
    auto keys = parse_jwks(*body);
    if (!keys) return err(fmt::format("{}: {}", jwks_uri_, keys.error()));
    return keys;
}

Result<bool> OidcVerifier::refresh() {
    tried_ = true;
    last_try_ = clock_();
    auto keys = load();
    if (!keys) {
        last_error_ = keys.error();
        backoff_ = std::min(kMaxBackoff, backoff_ * 2);
        return err(last_error_);
    }
    keys_ = std::move(*keys);
    last_ok_ = last_try_;
    last_error_.clear();
    backoff_ = kMinRefresh;
    return true;
}

bool OidcVerifier::may_refresh() const { return !tried_ || clock_() - last_try_ >= backoff_; }

const Jwk* OidcVerifier::lookup(const std::string& kid, std::string* why) {
    auto find = [&]() -> const Jwk* {
        auto it = std::find_if(keys_.begin(), keys_.end(), [&](const Jwk& k) { return k.kid == kid; });
        return it == keys_.end() ? nullptr : &*it;
    };
    const bool stale = !keys_.empty() && clock_() - last_ok_ >= kMaxKeyAge;
    const Jwk* k = stale ? nullptr : find();
    // An unknown kid (a rotation) or old keys: fetch again when allowed;
    // old keys stay in use while the provider cannot be reached.
    if (!k && may_refresh()) (void)refresh();
    if (!k) k = find();
    if (!k && keys_.empty() && !last_error_.empty())
        *why = fmt::format("the issuer's keys could not be fetched ({}); jitgated tries again within {} s",
                           last_error_, backoff_.count());
    return k;
}

Result<TokenIdentity> OidcVerifier::verify(std::string_view token, std::int64_t now_s) {
    return verify_id_token(
        token, rules_, [this](const std::string& kid, std::string* why) { return lookup(kid, why); }, now_s);
}

}  // namespace jg
