#pragma once
// Reading the audit stream: the record types, filters over records (the
// `audit` operation's and `jitgate audit --since`'s), whose records a caller
// may see, and what a denial asks the user to run.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace jg {

using json = nlohmann::json;

// Every record type (design.md §4), in a stable order.
const std::vector<std::string>& audit_types();
// The same, comma-separated, for messages that list them.
std::string audit_types_text();
bool is_audit_type(std::string_view type);

struct AuditFilter {
    std::vector<std::string> types;  // empty = all
    std::optional<int> port;
    std::optional<std::string> user;       // a name or a decimal uid: "user", "requester" or "uid"
    std::optional<std::int64_t> since_us;  // records with ts >= since
};

bool matches(const AuditFilter& filter, const json& record);

// The filter the arguments of the "audit" operation ask for (types known,
// port 1-65535, user not empty); an error sentence otherwise.
Result<AuditFilter> audit_filter_from_args(const json& args);

// Whether a record is about the caller: its "uid" is uid, its "user" or
// "requester" is name, or its "approvers" list holds name.
bool belongs_to(const json& record, std::uint32_t uid, const std::string& name);

// --since: an RFC 3339 time, or a duration ago ("10m", "2h", "1h30m").
Result<std::int64_t> parse_since(std::string_view text, std::int64_t now_us);

// For a deny record (a local user's, or a remote source's): the command
// that asks for access, "jitgate request 5432/tcp --for 30m --reason WHY"
// (with --from SRC for a remote source); empty for any other record. The
// daemon's status carries it as data; the CLI prints it under a denial.
std::string access_hint(const json& record);

}  // namespace jg
