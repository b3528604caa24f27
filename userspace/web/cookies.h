#pragma once
// Cookie headers: reading one value, writing the session and login cookies.
#include <string>
#include <string_view>

namespace jg::web {

// The value of cookie `name` in a Cookie header; empty when absent.
std::string cookie_value(std::string_view header, std::string_view name);

// The session cookie's name: under TLS with the __Host- prefix, which the
// browser accepts only with Secure, Path=/ and no Domain, so that a sibling
// host or a plain-http page cannot plant or overwrite a session (fixation).
std::string session_cookie(bool tls);

// Set-Cookie text. HttpOnly always; Secure when served over TLS.
// `same_site` is "Strict" (the session) or "Lax" (the login binding, which
// must come back with the identity provider's cross-site redirect).
std::string set_cookie(std::string_view name, std::string_view value, long max_age_s, bool secure,
                       std::string_view same_site, std::string_view path = "/");

}  // namespace jg::web
