#include "core/url.h"

#include <arpa/inet.h>

namespace jg {

std::string url_host(std::string_view url) {
    std::size_t at = 0;
    if (url.starts_with("https://"))
        at = 8;
    else if (url.starts_with("http://"))
        at = 7;
    else
        return {};
    const std::string_view authority = url.substr(at, url.find_first_of("/?#", at) - at);
    if (authority.empty() || authority.find('@') != std::string_view::npos) return {};
    if (authority[0] == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return {};
        return std::string(authority.substr(0, close + 1));
    }
    return std::string(authority.substr(0, authority.find(':')));
}

bool is_loopback_host(std::string_view host) {
    if (host == "localhost" || host == "[::1]") return true;
    // inet_pton takes exactly four decimal parts, so "127.1" or "127.0.0.1.evil"
    // are names, not literals.
    in_addr a{};
    const std::string h(host);
    return inet_pton(AF_INET, h.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

}  // namespace jg
