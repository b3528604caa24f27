#pragma once
// One webhook POST through libcurl (util/curl_api.h): TLS verified, connect
// and total time bounded, redirects refused (a 3xx is a failure), the
// response body read up to a cap and ignored.  2xx = delivered.
#include <memory>
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

// Posts to one target over one libcurl handle, kept between posts so that
// its connection (and TLS session) is reused: a lane that delivers a burst
// pays one handshake, not one per record.  One thread at a time.
class Poster {
public:
    PostOutcome post(const std::string& url, const std::vector<std::string>& headers, const std::string& body,
                     const PostLimits& limits = {});

private:
    std::unique_ptr<void, void (*)(void*)> handle_{nullptr, nullptr};
};

}  // namespace jg::notify
