#pragma once
// Progress of long work, for a log (the daemon's stderr, the journal): at
// most one line an interval, so a start that restores 65536 grants says how
// far it got, and a quick one says nothing before its closing line. Pure:
// the caller passes the time, so tests drive it.
#include <cstdint>
#include <optional>
#include <string>

namespace jg {

class Progress {
public:
    Progress(std::string what, std::uint64_t total, std::int64_t now_ms, std::int64_t every_ms = 1000);
    // "restoring grants: 20000/65536 (30%)" when a report is due at now_ms
    // (every_ms after the start or the last report); otherwise nothing.
    std::optional<std::string> step(std::uint64_t done, std::int64_t now_ms);
    std::int64_t elapsed_ms(std::int64_t now_ms) const { return now_ms - start_ms_; }

private:
    std::string what_;
    std::uint64_t total_;
    std::int64_t start_ms_, every_ms_, last_ms_;
};

}  // namespace jg
