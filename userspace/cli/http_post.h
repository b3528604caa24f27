#pragma once
// The CLI's HTTP to jitgate-web and to the identity provider (jitgate login,
// jitgate --web URL): libcurl (loaded on first use, util/curl_api.h), TLS
// verified, no redirects followed, no proxy from the environment, time and
// the answer's size bounded.
#include <string>
#include <vector>

#include "core/result.h"

namespace jg {

struct HttpAnswer {
    long status = 0;
    std::string body;
};

struct HttpBounds {
    long connect_timeout_ms = 5000;
    long total_timeout_ms = 40000;
    std::size_t max_bytes = 8 * 1024 * 1024;
};

// Err (one sentence) unless `url` is https://, or http:// to a loopback
// address (tests; the same rule as the issuer's, design.md §8). `what`
// names it in the sentence ("the jitgate-web URL").
Result<bool> check_http_url(const std::string& url, const std::string& what);

// POST `body` (empty body and empty content_type: a GET) to `url`; the
// answer whatever its status. Err only when no answer came (the sentence
// names the URL and why), or when it was larger than bounds.max_bytes.
Result<HttpAnswer> http_send(const std::string& url, const std::vector<std::string>& headers,
                             const std::string& body, bool post, const HttpBounds& bounds = {});

// application/x-www-form-urlencoded: key=value&..., each value percent-encoded.
std::string form_body(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace jg
