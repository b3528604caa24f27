#include "web/csrf.h"

#include "web/random.h"

namespace jg::web {

std::optional<std::string> csrf_refusal(const FormOrigin& f, std::string_view session_csrf,
                                        std::string_view own_origin) {
    // A browser that names another site (or "null", a sandboxed or
    // privacy-redirected origin) is refused before the token is looked at.
    if (!f.origin.empty() && f.origin != own_origin)
        return "this form was posted from another site; reload the page here and try again";
    if (!f.sec_fetch_site.empty() && f.sec_fetch_site != "same-origin")
        return "this form was posted from another site; reload the page here and try again";
    if (!equal_constant_time(f.csrf_field, session_csrf))
        return "this form is stale or was not made by this page; reload the page and try again";
    return std::nullopt;
}

}  // namespace jg::web
