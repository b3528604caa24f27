// "http:// only to this machine" (core/url.h): a name that starts like a
// loopback address is not one.
#include <doctest/doctest.h>

#include "core/url.h"

namespace test_url {

using jg::is_loopback_host;
using jg::url_host;

TEST_CASE("url_host: the authority's host, brackets kept, nothing on odd input") {
    CHECK(url_host("http://127.0.0.1:8080/x?y#z") == "127.0.0.1");
    CHECK(url_host("https://sso.example.com/realms/main") == "sso.example.com");
    CHECK(url_host("http://[::1]:9000/") == "[::1]");
    CHECK(url_host("http://localhost?x") == "localhost");
    CHECK(url_host("http://user@127.0.0.1/").empty());
    CHECK(url_host("ftp://127.0.0.1/").empty());
    CHECK(url_host("http:///path").empty());
    CHECK(url_host("http://[::1/").empty());
}

TEST_CASE("is_loopback_host: localhost, [::1] and IPv4 literals in 127/8 only") {
    CHECK(is_loopback_host("localhost"));
    CHECK(is_loopback_host("[::1]"));
    CHECK(is_loopback_host("127.0.0.1"));
    CHECK(is_loopback_host("127.255.3.4"));
    // Names that resolve anywhere, and other literals.
    CHECK_FALSE(is_loopback_host("127.evil.example"));
    CHECK_FALSE(is_loopback_host("127.0.0.1.evil.example"));
    CHECK_FALSE(is_loopback_host("localhost.evil.example"));
    CHECK_FALSE(is_loopback_host("[::1].evil.example"));
    CHECK_FALSE(is_loopback_host("128.0.0.1"));
    CHECK_FALSE(is_loopback_host("127.1"));
    CHECK_FALSE(is_loopback_host("[::2]"));
    CHECK_FALSE(is_loopback_host(""));
}

}  // namespace test_url
