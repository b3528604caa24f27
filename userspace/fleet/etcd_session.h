#pragma once
// Private to fleet/etcd_client.cpp and fleet/etcd_watch.cpp: the session
// behind an EtcdClient (options, the libcurl handle, the auth token), shared
// by the request/response calls and the streaming watch.
#include <atomic>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/result.h"
#include "fleet/etcd_client.h"
#include "util/curl_api.h"

namespace jg::fleet {

namespace detail {
inline constexpr std::size_t kMaxResponse = 64u << 20;  // a full read of the prefix is far smaller
// etcd's error text of a refused call ({"error", "message", "code"}), code set; empty if none.
std::string error_text(const nlohmann::json& j, std::int64_t& code);
// etcd's text, quoted and escaped for a terminal.
std::string shown(const std::string& s);
// Whether etcd's refusal says the auth token is no longer good (then the
// caller authenticates again and retries once).
bool is_token_error(const std::string& msg);
// What to check after every endpoint failed, appended to the failures.
std::string unreachable_hint(const std::string& failures);
}  // namespace detail

struct EtcdClient::Impl {
    EtcdOptions o;
    CURL* curl = nullptr;
    curl_slist* headers = nullptr;
    std::string token, last_endpoint;
    char errbuf[CURL_ERROR_SIZE] = {};

    // libcurl's detailed message for the last transfer (the certificate
    // problem, the refused address), else its generic one.
    std::string curl_error(CURLcode rc) const;

    ~Impl();

    // The handle set for one POST of `body` to endpoint + path.
    void prepare(const std::string& url, const std::string& body, long timeout_ms);

    // One POST to one endpoint: the parsed body, or why not.  `reached`
    // says whether etcd answered at all (else the next endpoint is tried).
    Result<nlohmann::json> post_one(const std::string& ep, const std::string& path, const std::string& body,
                                    bool& reached);

    // POST to each endpoint in order until one answers.  The result is the
    // response object, or one sentence: etcd's refusal, or every endpoint
    // unreachable.
    Result<nlohmann::json> post(const std::string& path, const nlohmann::json& req);

    Result<bool> authenticate();

    // post(), authenticating first when a user is set and no token is held,
    // and once more when etcd says the token is no longer valid.
    Result<nlohmann::json> call(const std::string& path, const nlohmann::json& req);

    Result<RangeResult> range(const nlohmann::json& req, bool* more);
    WatchEnd watch_one(const std::string& ep, const nlohmann::json& req,
                       const std::function<void(std::int64_t, std::vector<WatchEvent>&)>& on_events,
                       const std::atomic<bool>& stop, long idle_ms, bool& created);
};

}  // namespace jg::fleet
