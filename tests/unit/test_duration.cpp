// parse_duration / format_duration: "90s", "15m", "1h", "1h30m", "2d".
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "core/duration.h"

namespace test_duration {

using jg::format_duration;
using jg::kMaxDurationSeconds;
using jg::parse_duration;

TEST_SUITE("duration") {
    TEST_CASE("parse_duration accepts each unit and combinations") {
        struct Case {
            const char* text;
            std::int64_t seconds;
        };
        const Case cases[] = {
            {"1s", 1},
            {"90s", 90},
            {"15m", 900},
            {"1h", 3600},
            {"1h30m", 5400},
            {"2d", 172800},
            {"1d2h3m4s", 93784},
            {"1h1s", 3601},
            {"2m30s", 150},
            {"100m", 6000},
            {"0h5m", 300},
            {"007s", 7},
            {"366d", kMaxDurationSeconds},
        };
        for (const auto& c : cases) {
            CAPTURE(c.text);
            auto r = parse_duration(c.text);
            REQUIRE(r.ok());
            CHECK(*r == c.seconds);
        }
    }

    TEST_CASE("parse_duration rejects malformed text with a sentence that quotes the input") {
        const char* bad[] = {
            "",       // empty
            "10",     // no unit
            "h",      // no number
            "1x",     // unknown unit
            "1H",     // units are lower case
            "30m1h",  // out of order
            "1h1h",   // repeated unit
            "1m2m",   // repeated unit
            "0s",     // zero
            "0h0m",   // zero
            "-5m",    // sign
            "+5m",    // sign
            " 5m",    // leading space
            "5m ",    // trailing space
            "1.5h",   // fraction
            "5 m",    // inner space
            "1h30",   // trailing number without unit
        };
        for (const char* t : bad) {
            CAPTURE(t);
            auto r = parse_duration(t);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().find(std::string("'") + t + "'") != std::string::npos);
        }
    }

    TEST_CASE("parse_duration rejects anything longer than a year, without overflowing") {
        CHECK_FALSE(parse_duration("367d").ok());
        CHECK_FALSE(parse_duration("366d1s").ok());
        CHECK_FALSE(parse_duration("8785h").ok());  // 8784h = 366d
        CHECK(*parse_duration("8784h") == kMaxDurationSeconds);
        CHECK(*parse_duration(std::to_string(kMaxDurationSeconds) + "s") == kMaxDurationSeconds);
        CHECK_FALSE(parse_duration(std::to_string(kMaxDurationSeconds + 1) + "s").ok());
        // Far more digits than fit in 64 bits.
        CHECK_FALSE(parse_duration("99999999999999999999999999999999s").ok());
        CHECK_FALSE(parse_duration("9223372036854775807s").ok());
        CHECK_FALSE(parse_duration("9223372036854775808d").ok());
        auto r = parse_duration("400d");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().find("year") != std::string::npos);
    }

    TEST_CASE("format_duration writes what parse_duration reads") {
        CHECK(format_duration(0) == "0s");
        CHECK(format_duration(-5) == "0s");
        CHECK(format_duration(1) == "1s");
        CHECK(format_duration(59) == "59s");
        CHECK(format_duration(60) == "1m");
        CHECK(format_duration(90) == "1m30s");
        CHECK(format_duration(900) == "15m");
        CHECK(format_duration(3600) == "1h");
        CHECK(format_duration(5400) == "1h30m");
        CHECK(format_duration(3601) == "1h1s");
        CHECK(format_duration(86400) == "1d");
        CHECK(format_duration(93784) == "1d2h3m4s");
        CHECK(format_duration(kMaxDurationSeconds) == "366d");
    }

    TEST_CASE("format_duration and parse_duration round-trip") {
        const std::int64_t values[] = {
            1, 59, 61, 3599, 3600, 3661, 86399, 86401, 123456, kMaxDurationSeconds - 1, kMaxDurationSeconds};
        for (std::int64_t s : values) {
            CAPTURE(s);
            auto r = parse_duration(format_duration(s));
            REQUIRE(r.ok());
            CHECK(*r == s);
        }
    }

}  // TEST_SUITE

}  // namespace test_duration
