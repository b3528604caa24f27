#pragma once
// The one rule for "http:// only to this machine" (issuers, webhook targets,
// jitgate-web): a host is loopback when it is "localhost", "[::1]" or an
// IPv4 literal in 127.0.0.0/8.  A prefix test is not enough: "127.evil.net"
// and "localhost.evil.net" are names that resolve anywhere.
#include <string>
#include <string_view>

namespace jg {

// The host of an http:// or https:// URL: the authority up to the port,
// brackets kept for IPv6 ("[::1]"); "" when the URL has another scheme, no
// host, or user info ("user@host").
std::string url_host(std::string_view url);

bool is_loopback_host(std::string_view host);

}  // namespace jg
