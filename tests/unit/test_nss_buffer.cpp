// nss_lookup: the buffer of a user or group lookup grows on ERANGE, within
// a bound; any other answer ends the lookup at once.
#include <doctest/doctest.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "core/nss_buffer.h"

namespace test_nss_buffer {
using namespace jg;

TEST_CASE("nss_lookup: an entry larger than the first buffer is found with a bigger one") {
    // A lookup that needs 200 KiB, as getgrnam_r does for a group of a few
    // thousand members: ERANGE until the buffer holds it.
    const std::size_t need = 200 * 1024;
    std::vector<char> buf;
    std::vector<std::size_t> sizes;
    const int rc = nss_lookup(buf, _SC_GETGR_R_SIZE_MAX, [&](char*, std::size_t n) {
        sizes.push_back(n);
        return n < need ? ERANGE : 0;
    });
    CHECK(rc == 0);
    CHECK(buf.size() >= need);
    REQUIRE(sizes.size() >= 2);
    CHECK(sizes.front() >= kNssBufferMin);
    for (std::size_t i = 1; i < sizes.size(); ++i) CHECK(sizes[i] == 2 * sizes[i - 1]);
}

TEST_CASE("nss_lookup: bounded, and only ERANGE is retried") {
    std::vector<char> buf;
    int calls = 0;
    CHECK(nss_lookup(buf, _SC_GETPW_R_SIZE_MAX, [&](char*, std::size_t) {
              ++calls;
              return ERANGE;
          }) == ERANGE);
    CHECK(buf.size() == kNssBufferMax);
    CHECK(calls <= 12);  // 16 KiB doubled up to 16 MiB: 11 sizes
    calls = 0;
    CHECK(nss_lookup(buf, _SC_GETPW_R_SIZE_MAX, [&](char*, std::size_t) {
              ++calls;
              return EIO;
          }) == EIO);
    CHECK(calls == 1);
}

TEST_CASE("nss_lookup: a real lookup (root) fills its entry from the buffer") {
    std::vector<char> buf;
    passwd pw{}, *res = nullptr;
    REQUIRE(nss_lookup(buf, _SC_GETPW_R_SIZE_MAX,
                       [&](char* b, std::size_t n) { return getpwuid_r(0, &pw, b, n, &res); }) == 0);
    REQUIRE(res != nullptr);
    CHECK(std::string(pw.pw_name) == "root");
    group gr{}, *gres = nullptr;
    CHECK(nss_lookup(buf, _SC_GETGR_R_SIZE_MAX, [&](char* b, std::size_t n) {
              return getgrnam_r("jitgate-no-such-group-zz", &gr, b, n, &gres);
          }) == 0);
    CHECK(gres == nullptr);
}

}  // namespace test_nss_buffer
