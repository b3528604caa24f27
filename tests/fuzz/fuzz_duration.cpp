// libFuzzer: durations as people write them (core/duration.h: --for, the
// policy's max_duration) and the times `jitgate audit --since` takes (an
// RFC 3339 time or a duration ago: parse_since, parse_rfc3339_us) on
// arbitrary text. An accepted duration is 1 s to a year and comes back the
// same through format_duration; an accepted time comes back the same
// through rfc3339_us.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "core/audit.h"
#include "core/clock.h"
#include "core/duration.h"

using namespace jg;

namespace {

constexpr std::int64_t kNowUs = 1800000000LL * 1000000;  // 2027-01-15T08:00:00Z

void duration(std::string_view in) {
    auto d = parse_duration(in);
    if (!d) {
        JG_CHECK(!d.error().empty(), in, "a refusal says why");
        return;
    }
    const std::string detail = "parsed as " + std::to_string(*d);
    JG_CHECK(*d > 0 && *d <= kMaxDurationSeconds, in, detail);
    JG_CHECK(in.find_first_not_of("0123456789dhms") == std::string_view::npos, in, detail);
    const std::string text = format_duration(*d);
    auto again = parse_duration(text);
    JG_CHECK(again && *again == *d, in, "parse_duration(format_duration(d)) == d, text " + text);
    JG_CHECK(format_duration(*again) == text, in, "format_duration is canonical: " + text);
}

// Any whole number of seconds in range, formatted, reads back the same.
void formatted(std::string_view in) {
    if (in.size() < 8) return;
    std::uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = bits << 8 | static_cast<unsigned char>(in[i]);
    const std::int64_t s = std::int64_t(bits % std::uint64_t(kMaxDurationSeconds)) + 1;
    const std::string text = format_duration(s);
    auto back = parse_duration(text);
    JG_CHECK(back && *back == s, in, std::to_string(s) + " formatted as " + text);
}

void time(std::string_view in) {
    static const std::int64_t kFirst = *parse_rfc3339_us("0000-01-01T00:00:00Z");
    static const std::int64_t kLast = *parse_rfc3339_us("9999-12-31T23:59:59.999999Z");
    auto t = parse_rfc3339_us(in);
    if (t && *t >= kFirst && *t <= kLast) {
        const std::string text = rfc3339_us(*t);
        auto again = parse_rfc3339_us(text);
        JG_CHECK(again && *again == *t, in, "parse_rfc3339_us(rfc3339_us(t)) == t, text " + text);
    }
    auto since = parse_since(in, kNowUs);
    if (since && !t) {
        auto d = parse_duration(in);
        JG_CHECK(d && *since == kNowUs - *d * 1000000, in, "--since DURATION is that long before now");
    }
    if (t) JG_CHECK(since && *since == *t, in, "--since TIME is that time");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    duration(in);
    formatted(in);
    time(in);
    return 0;
}
