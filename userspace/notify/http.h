#pragma once
// One webhook POST through libcurl (util/curl_api.h): TLS verified, connect
// and total time bounded, redirects refused (a 3xx is a failure), the
// response body read up to a cap and ignored.  2xx = delivered.
#include <string>
#include <vector>

namespace jg::notify {

struct PostLimits {
    long connect_timeout_ms = 5000;
    long total_timeout_ms = 15000;
    std::size_t max_response_bytes = 64 * 1024;
};

struct PostOutcome {
    bool delivered = false;
    long status = 0;    // HTTP status; 0 when none came
    std::string error;  // why not delivered: one line, no secrets (no URL path)
};

// Why libcurl cannot be used (one sentence), or "".
std::string curl_api_check();

PostOutcome post(const std::string& url, const std::vector<std::string>& headers, const std::string& body,
                 const PostLimits& limits = {});

}  // namespace jg::notify
