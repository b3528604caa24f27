// jg::unique_fd: one owner closes a descriptor once, on destruction, reset
// or assignment, and a moved-from owner closes nothing (a descriptor number
// reused meanwhile by another open stays open).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <utility>

#include "util/unique_fd.h"

namespace test_unique_fd {

using jg::unique_fd;

namespace {

bool is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

int open_null() {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    return fd;
}

}  // namespace

TEST_CASE("unique_fd closes its descriptor when it goes") {
    int raw = -1;
    {
        const unique_fd fd(open_null());
        raw = fd.get();
        CHECK(bool(fd));
        CHECK(is_open(raw));
    }
    CHECK_FALSE(is_open(raw));
    CHECK_FALSE(bool(unique_fd()));
}

TEST_CASE("unique_fd moves ownership: the moved-from owner closes nothing") {
    unique_fd a(open_null());
    const int raw = a.get();
    {
        unique_fd b(std::move(a));
        CHECK(b.get() == raw);
        CHECK(a.get() == -1);
        CHECK(is_open(raw));
    }
    CHECK_FALSE(is_open(raw));  // closed by b
    // The number is free again: the next open takes it.  `a`, moved from,
    // must not close that descriptor when it goes.
    const unique_fd reused(open_null());
    REQUIRE(reused.get() == raw);
    { unique_fd gone = std::move(a); }
    a.reset();
    CHECK(is_open(raw));
}

TEST_CASE("unique_fd move assignment closes the descriptor it held, once") {
    unique_fd a(open_null());
    unique_fd b(open_null());
    const int old_a = a.get(), old_b = b.get();
    a = std::move(b);
    CHECK_FALSE(is_open(old_a));
    CHECK(a.get() == old_b);
    CHECK(b.get() == -1);
    CHECK(is_open(old_b));
    auto& self = a;
    a = std::move(self);  // self-move keeps it
    CHECK(a.get() == old_b);
    CHECK(is_open(old_b));
}

TEST_CASE("unique_fd release gives the descriptor up; reset closes and takes another") {
    unique_fd a(open_null());
    const int raw = a.release();
    CHECK(a.get() == -1);
    CHECK(is_open(raw));
    a.reset(raw);
    const int other = open_null();
    a.reset(other);
    CHECK_FALSE(is_open(raw));
    CHECK(is_open(other));
    a.reset();
    CHECK_FALSE(is_open(other));
}

}  // namespace test_unique_fd
