#pragma once
// The control-socket wire protocol: one JSON object per line, both ways.
//   request:  {"id": 7, "op": "approve", "args": {"id": 12}}
//             {"id": 7, "op": "approve", "args": {"id": 12}, "token": "eyJ..."}
//             (token: an OIDC ID token; jitgated verifies it and acts as
//             its user, design.md §8; without one, as the peer's uid)
//   reply:    {"id": 7, "ok": true, "result": {...}}
//             {"id": 7, "ok": false, "error": {"code": "...", "message": "..."}}
#include <cstdint>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/operations.h"
#include "core/result.h"

namespace jg {

using json = nlohmann::json;

inline constexpr std::size_t kMaxMessageBytes = 64 * 1024;
// JSON nesting past which jitgate builds nothing: no message or record of
// ours goes past 3 levels, and copying or printing a value recurses once per
// level, so deeper input (a line of brackets) could otherwise exhaust the stack.
inline constexpr int kMaxJsonDepth = 16;
// `text` as JSON; discarded when it is not JSON or nests past kMaxJsonDepth
// (then *too_deep, and nothing deeper was built).  Every parser of
// untrusted JSON text goes through this: control messages, audit log lines.
nlohmann::json parse_json_bounded(std::string_view text, bool* too_deep = nullptr);
inline constexpr std::size_t kMaxReasonBytes = 1024;
// An ID token is at most this long (a JWT with a few dozen groups is ~2 KiB).
inline constexpr std::size_t kMaxTokenBytes = 16 * 1024;
inline constexpr std::size_t kMaxTicketBytes = 128;

// Error codes, and the CLI exit code each maps to (design.md §3).
namespace code {
inline constexpr const char* kInvalid = "invalid";      // malformed input: exit 2
inline constexpr const char* kRefused = "refused";      // policy said no: exit 3
inline constexpr const char* kForbidden = "forbidden";  // caller may not: exit 3
inline constexpr const char* kNotFound = "not_found";   // no such id: exit 1
inline constexpr const char* kConflict = "conflict";    // already decided: exit 1
inline constexpr const char* kCapacity = "capacity";    // grant map full: exit 1
inline constexpr const char* kInternal = "internal";    // exit 1
// Fleet (design.md §7): a fleet operation asked of a single host; etcd
// could not be reached or did not answer in time.  Both exit 1.
inline constexpr const char* kNotFleet = "not_fleet";
inline constexpr const char* kFleetDown = "fleet_unreachable";
// A request's "token" failed a check (design.md §8): exit 3.
inline constexpr const char* kAuthFailed = "auth_failed";
// The CLI's own, never the daemon's: jitgated could not be reached: exit 4.
inline constexpr const char* kUnreachable = "unreachable";
}  // namespace code
int exit_code_for(std::string_view error_code);

struct WireRequest {
    std::int64_t id = 0;
    std::string op;  // the operation's name
    Op kind = Op::Status;
    json args = json::object();
    // An OIDC ID token to act as (design.md §8), unverified: the daemon checks it.
    std::optional<std::string> token;
};

// Parses and validates one request line: JSON syntax, the envelope, the
// operation name, and every argument's name and type (core/operations.h).
struct WireError {
    std::int64_t id = 0;
    std::string message;
};
Result<WireRequest> parse_request(std::string_view line, WireError* why_id = nullptr);

std::string reply_ok(std::int64_t id, const json& result);
std::string reply_error(std::int64_t id, std::string_view code, std::string_view message);

// The stream of op "audit" (args: follow, since_us, types, port, user, limit):
// zero or more event lines (history, oldest first), then one reply_ok with
// {"count": N, "following": bool, "scope": "all"|"own"}; when following,
// more event lines as records are written, and dropped lines counting the
// records this follower missed because it read too slowly.
//   {"id": 7, "ok": true, "event": {...the record...}}
//   {"id": 7, "ok": true, "dropped": 12}
std::string reply_event(std::int64_t id, const json& record);
std::string reply_dropped(std::int64_t id, std::uint64_t n);

}  // namespace jg
