// Progress lines of long work (the daemon restoring grants at start).
#include <doctest/doctest.h>

#include <cstdint>

#include "core/progress.h"

namespace test_progress {

using jg::Progress;

TEST_SUITE("progress") {
    TEST_CASE("nothing before the interval; then one line an interval, with the share done") {
        Progress p("restoring grants", 65536, 10'000);
        CHECK_FALSE(p.step(1, 10'000));
        CHECK_FALSE(p.step(5000, 10'999));
        CHECK(p.step(20000, 11'000) == "restoring grants: 20000/65536 (30%)");
        CHECK_FALSE(p.step(30000, 11'500));  // the interval counts from the last line
        CHECK_FALSE(p.step(40000, 11'999));
        CHECK(p.step(65536, 12'000) == "restoring grants: 65536/65536 (100%)");
        CHECK(p.elapsed_ms(12'345) == 2345);
    }

    TEST_CASE("a quick run says nothing; an empty one does not divide by zero") {
        Progress quick("restoring grants", 10, 0);
        for (std::uint64_t i = 1; i <= 10; ++i) CHECK_FALSE(quick.step(i, 3));
        Progress empty("restoring grants", 0, 0, 10);
        CHECK(empty.step(0, 10) == "restoring grants: 0/0 (100%)");
    }
}

}  // namespace test_progress
