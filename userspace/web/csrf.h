#pragma once
// Whether a state-changing form post comes from our own page: the session's
// CSRF token (compared in constant time), and where the browser says the
// post comes from (Origin, Sec-Fetch-Site) when it says so.
#include <optional>
#include <string>
#include <string_view>

namespace jg::web {

struct FormOrigin {
    std::string csrf_field;      // the form's "csrf" value
    std::string origin;          // the Origin header; empty when absent
    std::string sec_fetch_site;  // the Sec-Fetch-Site header; empty when absent
};

// Nullopt when the post may proceed, else the sentence saying why not.
// `own_origin` is scheme://host[:port] of this server as browsers reach it.
std::optional<std::string> csrf_refusal(const FormOrigin& f, std::string_view session_csrf,
                                        std::string_view own_origin);

}  // namespace jg::web
