#pragma once
// How many refused tokens are recorded one by one (auth_failed).  Anyone who
// reaches jitgate-web can present a made-up token on every request, and each
// refusal was an audit record: the log grew without bound (a full disk stops
// the daemon) and real records were pushed out of view.  So at most
// kPerWindow refusals a window are recorded whole; the rest are counted and
// written as one record when the window ends (its `suppressed`: how many it
// stands for, as for rate-limited denials), never dropped without a trace.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

namespace jg {

class RefusalBudget {
public:
    static constexpr int kPerWindow = 100;
    static constexpr std::int64_t kWindowUs = 10'000'000;
    static constexpr std::size_t kUidsNamed = 8;  // uids a closing record names

    // The refusals a window counted without recording them one by one.
    struct Closing {
        std::uint64_t suppressed = 0;
        std::set<std::uint32_t> uids;  // who presented them (at most kUidsNamed)
        bool more_uids = false;
    };

    // A refusal by `uid` at now_us: true when it is recorded whole now,
    // false when it is only counted.  Call ended() first: a window that
    // ended is closed there, not here.
    bool admit(std::uint32_t uid, std::int64_t now_us);
    // The closing record of the window, once it ended with refusals only
    // counted; nothing otherwise (then or later).
    std::optional<Closing> ended(std::int64_t now_us);

private:
    bool started_ = false;
    std::int64_t start_us_ = 0;
    int recorded_ = 0;
    Closing counted_;
};

// The closing record: auth_failed with `suppressed` (how many it stands
// for) and, in its reason, the uids that presented them.
nlohmann::json refusal_closing(const RefusalBudget::Closing& c);

}  // namespace jg
