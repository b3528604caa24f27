#include "util/curl_api.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <mutex>

namespace jg {

namespace {

CurlApi g_api{};
const CurlApi* g_loaded = nullptr;
std::string g_error;
std::once_flag g_once;

template <typename F>
bool bind(void* lib, const char* name, F& out) {
    out = reinterpret_cast<F>(dlsym(lib, name));
    if (!out) g_error = fmt::format("libcurl.so.4 has no {}; install a libcurl4 of Debian 12 or newer", name);
    return out != nullptr;
}

void load() {
    // Never unloaded: handles live as long as the clients that use them.
    void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        g_error =
            fmt::format("cannot load libcurl (libcurl.so.4: {}); install the libcurl4 package", dlerror());
        return;
    }
    CurlApi& a = g_api;
    const bool ok =
        bind(lib, "curl_global_init", a.global_init) && bind(lib, "curl_easy_init", a.easy_init) &&
        bind(lib, "curl_easy_setopt", a.easy_setopt) && bind(lib, "curl_easy_perform", a.easy_perform) &&
        bind(lib, "curl_easy_cleanup", a.easy_cleanup) && bind(lib, "curl_easy_reset", a.easy_reset) &&
        bind(lib, "curl_easy_getinfo", a.easy_getinfo) && bind(lib, "curl_easy_strerror", a.easy_strerror) &&
        bind(lib, "curl_multi_init", a.multi_init) &&
        bind(lib, "curl_multi_add_handle", a.multi_add_handle) &&
        bind(lib, "curl_multi_remove_handle", a.multi_remove_handle) &&
        bind(lib, "curl_multi_perform", a.multi_perform) && bind(lib, "curl_multi_poll", a.multi_poll) &&
        bind(lib, "curl_multi_info_read", a.multi_info_read) &&
        bind(lib, "curl_multi_cleanup", a.multi_cleanup) && bind(lib, "curl_slist_append", a.slist_append) &&
        bind(lib, "curl_slist_free_all", a.slist_free_all);
    if (!ok) return;
    if (a.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        g_error = "libcurl could not initialise (curl_global_init failed)";
        return;
    }
    g_loaded = &g_api;
}

}  // namespace

Result<const CurlApi*> curl_api() {
    std::call_once(g_once, load);
    if (!g_loaded) return err(g_error);
    return g_loaded;
}

const CurlApi& curl_fns() { return *g_loaded; }

std::size_t curl_collect(char* p, std::size_t size, std::size_t n, void* body) {
    auto* b = static_cast<CurlBody*>(body);
    if (b->data.size() + size * n > b->max) {
        b->too_large = true;
        return 0;  // libcurl ends the transfer
    }
    b->data.append(p, size * n);
    return size * n;
}

}  // namespace jg
