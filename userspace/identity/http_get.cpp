#include "identity/http_get.h"

#include <fmt/format.h>

#include <memory>

#include "util/curl_api.h"

namespace jg {

Result<std::string> http_get(const std::string& url, const HttpLimits& limits) {
    auto api = curl_api();
    if (!api) return err(api.error());
    const CurlApi& f = curl_fns();
    std::unique_ptr<CURL, void (*)(CURL*)> curl(f.easy_init(), f.easy_cleanup);
    if (!curl) return err("libcurl could not start a transfer");
    CURL* c = curl.get();
    char errbuf[CURL_ERROR_SIZE] = {};
    CurlBody body;
    body.max = limits.max_bytes;
    f.easy_setopt(c, CURLOPT_URL, url.c_str());
    f.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    f.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    f.easy_setopt(c, CURLOPT_PROXY, "");  // the provider is reached directly, never via $https_proxy
    f.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    f.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is an error, never followed elsewhere
    f.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    f.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    f.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, limits.connect_timeout_ms);
    f.easy_setopt(c, CURLOPT_TIMEOUT_MS, limits.total_timeout_ms);
    f.easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(limits.max_bytes));
    f.easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_collect);
    f.easy_setopt(c, CURLOPT_WRITEDATA, &body);
    const CURLcode rc = f.easy_perform(c);
    if (body.too_large) return err(fmt::format("{} answered more than {} KiB", url, limits.max_bytes / 1024));
    if (rc != CURLE_OK)
        return err(fmt::format("GET {} failed: {}", url, errbuf[0] ? errbuf : f.easy_strerror(rc)));
    long status = 0;
    f.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) return err(fmt::format("GET {} answered HTTP {}", url, status));
    return std::move(body.data);
}

}  // namespace jg
