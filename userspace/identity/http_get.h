#pragma once
// One bounded HTTP GET for the OpenID provider's discovery document and
// JWKS: libcurl (loaded on first use, util/curl_api.h), TLS verified, no
// redirects followed, no proxy from the environment, a deadline for the
// whole transfer and a cap on the body.
#include <string>

#include "core/result.h"

namespace jg {

struct HttpLimits {
    long connect_timeout_ms = 1500;
    long total_timeout_ms = 2500;
    std::size_t max_bytes = 256 * 1024;
};

// The body of a 200 answer to GET `url`; otherwise one sentence saying what failed.
Result<std::string> http_get(const std::string& url, const HttpLimits& limits = {});

}  // namespace jg
