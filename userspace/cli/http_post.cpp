#include "cli/http_post.h"

#include <fmt/format.h>

#include <cctype>
#include <memory>

#include "core/url.h"
#include "util/curl_api.h"

namespace jg {

Result<bool> check_http_url(const std::string& url, const std::string& what) {
    const bool https = url.starts_with("https://");
    if (!https && !url.starts_with("http://"))
        return err(fmt::format("{} {} must begin with https://", what, url));
    const std::size_t host_at = https ? 8 : 7;
    std::string host = url.substr(host_at, url.find_first_of("/?#", host_at) - host_at);
    if (host.find('@') != std::string::npos)
        return err(fmt::format("{} {} must not hold a user name or password", what, url));
    if (auto colon = host.rfind(':'); colon != std::string::npos && host.back() != ']') host.resize(colon);
    if (host.empty()) return err(fmt::format("{} {} names no host", what, url));
    if (!https && !is_loopback_host(host))
        return err(
            fmt::format("{} {} must use https (http only to a loopback address, for tests)", what, url));
    return true;
}

Result<HttpAnswer> http_send(const std::string& url, const std::vector<std::string>& headers,
                             const std::string& body, bool post, const HttpBounds& bounds) {
    auto api = curl_api();
    if (!api) return err(api.error());
    const CurlApi& f = **api;
    std::unique_ptr<CURL, void (*)(CURL*)> curl(f.easy_init(), f.easy_cleanup);
    if (!curl) return err("libcurl could not start a transfer");
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = f.slist_append(list, h.c_str());
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> hold(list, f.slist_free_all);
    CURL* c = curl.get();
    char errbuf[CURL_ERROR_SIZE] = {};
    CurlBody got;
    got.max = bounds.max_bytes;
    f.easy_setopt(c, CURLOPT_URL, url.c_str());
    f.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    f.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    f.easy_setopt(c, CURLOPT_PROXY, "");  // never through $https_proxy: the token goes straight there
    f.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    f.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is answered as its 3xx, never followed
    f.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    f.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    f.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, bounds.connect_timeout_ms);
    f.easy_setopt(c, CURLOPT_TIMEOUT_MS, bounds.total_timeout_ms);
    f.easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(bounds.max_bytes));
    f.easy_setopt(c, CURLOPT_USERAGENT, "jitgate");
    f.easy_setopt(c, CURLOPT_HTTPHEADER, list);
    f.easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_collect);
    f.easy_setopt(c, CURLOPT_WRITEDATA, &got);
    if (post) {
        f.easy_setopt(c, CURLOPT_POST, 1L);
        f.easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
        f.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.size()));
    }
    const CURLcode rc = f.easy_perform(c);
    if (got.too_large) return err(fmt::format("{} answered more than {} KiB", url, bounds.max_bytes / 1024));
    if (rc != CURLE_OK) return err(fmt::format("{}: {}", url, errbuf[0] ? errbuf : f.easy_strerror(rc)));
    HttpAnswer a;
    f.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
    a.body = std::move(got.data);
    return a;
}

std::string form_body(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string out;
    auto encode = [&out](std::string_view v) {
        for (unsigned char ch : v) {
            if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~')
                out += static_cast<char>(ch);
            else
                out += fmt::format("%{:02X}", ch);
        }
    };
    for (const auto& [k, v] : fields) {
        if (!out.empty()) out += '&';
        encode(k);
        out += '=';
        encode(v);
    }
    return out;
}

}  // namespace jg
