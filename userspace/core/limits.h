#pragma once
// Bounds on what one user can make jitgated store (issue 16, item 7): caps on
// pending requests, a request rate per uid, how long decided rows are kept,
// and the free space below which nothing new is recorded.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/result.h"

namespace jg {

struct RequestLimits {
    int max_pending_per_user = 20;  // [daemon] max_pending_per_user
    int max_pending_per_port = 5;   // [daemon] max_pending_per_port: per user and port
    // [daemon] request_rate = "30/m": a bucket of `rate_burst` requests,
    // refilled evenly over `rate_period_s`.
    int rate_burst = 30;
    std::int64_t rate_period_s = 60;
    // [daemon] retention = "30d": decided requests and ended grants older
    // than this are deleted from the state store; 0 keeps them forever.
    std::int64_t retention_s = 30LL * 86400;
    // [daemon] min_free_mb = 64: new requests are refused while the state or
    // audit directory's filesystem has less than this free; 0 turns it off.
    std::int64_t min_free_mb = 64;
};

// Retention shorter than this would delete break-glass grants before their
// week in `list` for review.
inline constexpr std::int64_t kMinRetentionSeconds = 7LL * 86400;

// "30/m", "5/s", "100/h": how many requests per period.
Result<std::pair<int, std::int64_t>> parse_rate(std::string_view text);
std::string format_rate(int burst, std::int64_t period_s);

// A token bucket per uid: each holds up to `burst` requests and refills one
// every period/burst.  Full buckets are forgotten, so the map holds only
// users who asked recently.
class RequestRate {
public:
    // Takes one request for `uid` at CLOCK_BOOTTIME `now_ns`; false (and the
    // seconds until the next one is allowed in *wait_s) when the bucket is empty.
    bool take(std::uint32_t uid, std::uint64_t now_ns, int burst, std::int64_t period_s,
              std::int64_t* wait_s = nullptr);
    std::size_t tracked() const { return buckets_.size(); }

private:
    struct Bucket {
        double tokens = 0;
        std::uint64_t at_ns = 0;
    };
    std::map<std::uint32_t, Bucket> buckets_;
    void forget_full(std::uint64_t now_ns, int burst, std::int64_t period_s);
};

}  // namespace jg
