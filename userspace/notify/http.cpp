#include "notify/http.h"

#include <fmt/format.h>

#include <memory>

#include "util/curl_api.h"

namespace jg::notify {

namespace {

struct Sink {
    std::size_t got = 0;
    std::size_t cap = 0;
    bool over = false;
};

// The body is counted, not kept; past the cap the transfer ends.
std::size_t on_body(char*, std::size_t size, std::size_t n, void* p) {
    auto* s = static_cast<Sink*>(p);
    s->got += size * n;
    if (s->got > s->cap) {
        s->over = true;
        return 0;
    }
    return size * n;
}

}  // namespace

std::string curl_api_check() {
    auto api = curl_api();
    return api ? std::string() : api.error();
}

PostOutcome Poster::post(const std::string& url, const std::vector<std::string>& headers,
                         const std::string& body, const PostLimits& limits) {
    PostOutcome out;
    auto api = curl_api();
    if (!api) {
        out.error = api.error();
        return out;
    }
    const CurlApi& c = **api;
    if (!handle_) {
        handle_ = {c.easy_init(), [](void* h) { curl_fns().easy_cleanup(static_cast<CURL*>(h)); }};
        if (!handle_) {
            out.error = "libcurl could not make a handle";
            return out;
        }
    } else {
        // Every option back to its default; the open connection stays cached.
        c.easy_reset(static_cast<CURL*>(handle_.get()));
    }
    curl_slist* list = nullptr;
    for (const auto& hd : headers) list = c.slist_append(list, hd.c_str());
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> hold(list, c.slist_free_all);
    Sink sink{0, limits.max_response_bytes, false};
    CURL* e = static_cast<CURL*>(handle_.get());
    c.easy_setopt(e, CURLOPT_URL, url.c_str());
    c.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    c.easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    c.easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    c.easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    c.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, limits.connect_timeout_ms);
    c.easy_setopt(e, CURLOPT_TIMEOUT_MS, limits.total_timeout_ms);
    c.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    c.easy_setopt(e, CURLOPT_POST, 1L);
    c.easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
    c.easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    c.easy_setopt(e, CURLOPT_HTTPHEADER, list);
    c.easy_setopt(e, CURLOPT_USERAGENT, "jitgate-notify");
    c.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    c.easy_setopt(e, CURLOPT_WRITEDATA, &sink);
    const CURLcode rc = c.easy_perform(e);
    c.easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out.status);
    // A receiver that accepted the message and then talks on: delivered,
    // the rest of its answer unread.
    if (rc != CURLE_OK && !(sink.over && out.status >= 200 && out.status < 300)) {
        out.error = sink.over
                        ? fmt::format("the response was longer than {} KiB", limits.max_response_bytes / 1024)
                        : fmt::format("{}", c.easy_strerror(rc));
        return out;
    }
    if (out.status >= 300 && out.status < 400) {
        out.error = fmt::format("HTTP {}: a redirect, refused (give the final URL)", out.status);
        return out;
    }
    if (out.status < 200 || out.status >= 300) {
        out.error = fmt::format("HTTP {}", out.status);
        return out;
    }
    out.delivered = true;
    return out;
}

}  // namespace jg::notify
