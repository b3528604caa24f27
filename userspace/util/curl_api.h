#pragma once
// libcurl, loaded when a process first speaks HTTP (a fleet node to etcd, the notifier to its targets, the
// CLI to jitgate-web) rather than linked: libcurl4 (OpenSSL flavour) brings 28 shared libraries of its own
// (Kerberos, LDAP, SSH, RTMP, GnuTLS, ...) whose relocated pages cost every
// jitgated about 4.5 MiB of resident memory, single hosts that never speak
// HTTP included.  The package depends on libcurl4 (CMakeLists.txt).
// Without the type-checking macros curl_easy_setopt is a plain function,
// which the table below points at.
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include <cstddef>
#include <string>

#include "core/result.h"

namespace jg {

struct CurlApi {
    CURLcode (*global_init)(long flags);
    CURL* (*easy_init)();
    CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
    CURLcode (*easy_perform)(CURL*);
    void (*easy_cleanup)(CURL*);
    void (*easy_reset)(CURL*);
    CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
    const char* (*easy_strerror)(CURLcode);
    CURLM* (*multi_init)();
    CURLMcode (*multi_add_handle)(CURLM*, CURL*);
    CURLMcode (*multi_remove_handle)(CURLM*, CURL*);
    CURLMcode (*multi_perform)(CURLM*, int*);
    CURLMcode (*multi_poll)(CURLM*, struct curl_waitfd[], unsigned int, int, int*);
    CURLMsg* (*multi_info_read)(CURLM*, int*);
    CURLMcode (*multi_cleanup)(CURLM*);
    struct curl_slist* (*slist_append)(struct curl_slist*, const char*);
    void (*slist_free_all)(struct curl_slist*);
};

// libcurl's functions, loaded and globally initialised once (thread-safe),
// or why they could not be (libcurl4 missing: one sentence saying so).
Result<const CurlApi*> curl_api();
// The table curl_api() loaded; only after it succeeded.
const CurlApi& curl_fns();

// A response body kept whole up to `max` bytes: CURLOPT_WRITEFUNCTION
// curl_collect with CURLOPT_WRITEDATA a CurlBody*; past `max` the transfer
// ends (libcurl reports a write error) and too_large says why.
struct CurlBody {
    std::string data;
    std::size_t max = 0;
    bool too_large = false;
};
std::size_t curl_collect(char* p, std::size_t size, std::size_t n, void* body);

}  // namespace jg
