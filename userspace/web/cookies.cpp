#include "web/cookies.h"

#include <fmt/format.h>

namespace jg::web {

std::string cookie_value(std::string_view header, std::string_view name) {
    while (!header.empty()) {
        auto semi = header.find(';');
        std::string_view part = header.substr(0, semi);
        while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
        if (auto eq = part.find('='); eq != std::string_view::npos && part.substr(0, eq) == name)
            return std::string(part.substr(eq + 1));
        if (semi == std::string_view::npos) break;
        header.remove_prefix(semi + 1);
    }
    return {};
}

std::string session_cookie(bool tls) { return tls ? "__Host-jg_session" : "jg_session"; }

std::string set_cookie(std::string_view name, std::string_view value, long max_age_s, bool secure,
                       std::string_view same_site, std::string_view path) {
    return fmt::format("{}={}; Path={}; Max-Age={}; HttpOnly; SameSite={}{}", name, value, path, max_age_s,
                       same_site, secure ? "; Secure" : "");
}

}  // namespace jg::web
