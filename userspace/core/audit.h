#pragma once
// Audit records: JSON Lines, each with a gapless `seq` and a SHA-256 chain
// (`prev_hash`, `hash`) over a canonical serialisation of the record.
#include <cstdint>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/result.h"

namespace jg {

using json = nlohmann::json;

inline constexpr const char* kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The canonical form hashed: the record without "hash", keys sorted, no
// whitespace, UTF-8 (invalid bytes replaced).
std::string canonical(const json& record);
std::string sha256_hex(std::string_view data);

// Chain state: the last record written.
struct ChainHead {
    std::uint64_t seq = 0;  // seq of the last record; 0 = none yet
    std::string hash = kGenesisHash;
};

// Fills seq, prev_hash and hash of `record` (which already holds ts, type and
// its context) from `head`, and advances `head`.
void seal(json& record, ChainHead& head);

// One log line: ts, seq and type first, then the context (sorted), then
// prev_hash and hash; newline-terminated.
std::string render_line(const json& sealed);

// A record's type and context as JSON texts, built without a json object:
// the daemon's records of kernel decisions, thousands a second.  Keys are
// not copied: give string literals (or keep them alive while this lives).
// A key given twice keeps its last value.
class AuditFields {
public:
    AuditFields& add(std::string_view key, std::string_view text);  // a string
    AuditFields& add(std::string_view key, const char* text) { return add(key, std::string_view(text)); }
    AuditFields& add(std::string_view key, std::uint64_t n);
    AuditFields& add(std::string_view key, std::int64_t n);
    AuditFields& add(std::string_view key, std::uint32_t n) { return add(key, std::uint64_t(n)); }
    AuditFields& add(std::string_view key, std::uint16_t n) { return add(key, std::uint64_t(n)); }
    AuditFields& add_json(std::string_view key, const json& v);  // any value
    void clear();
    // The fields sorted by key, each value's JSON text.
    std::vector<std::pair<std::string_view, std::string_view>> sorted() const;
    json to_json() const;

private:
    template <typename Write>
    AuditFields& put(std::string_view key, Write write);
    struct Field {
        std::string_view key;
        std::size_t off, len;  // the value's text in text_
    };
    std::string text_;
    std::vector<Field> fields_;
};

// seal() and render_line() in one pass, for the daemon's hot path: seals
// `record` (type and context; its own ts, seq, prev_hash and hash are
// ignored) as the record after `head` with timestamp `ts`, appends its line
// to `out` and advances `head`. Each value is serialised once and the
// canonical form and the line are assembled from those texts: the same
// bytes and the same hash as seal() + render_line().
void seal_line(const AuditFields& record, std::string_view ts, ChainHead& head, std::string& out);
void seal_line(const json& record, std::string_view ts, ChainHead& head, std::string& out);

// The end of an existing log file, for continuing its chain.
struct LogTail {
    bool empty = true;                 // no bytes at all (or the file does not exist)
    bool incomplete = false;           // bytes after the last newline (a record cut short)
    std::uint64_t complete_bytes = 0;  // the file's size up to and including its last newline
    bool unreadable_last = false;      // the last complete line is not a sealed record
    std::optional<ChainHead> head;     // seq and hash of the last complete line, when sealed
    std::string prev_hash;             // that record's prev_hash
};

// Reads the last 1 MiB of `path` (a longer line is not a record); a missing
// file is an empty tail. Err when the file cannot be read or is not a
// regular file.
Result<LogTail> read_log_tail(const std::string& path);

// --- Verification -----------------------------------------------------------

// A longer line is not an audit record (and is never held in memory whole).
inline constexpr std::size_t kMaxAuditLineBytes = 1024 * 1024;

struct VerifyResult {
    bool ok = true;
    std::uint64_t records = 0;                  // records checked and intact
    std::uint64_t first_seq = 0, last_seq = 0;  // of the intact part
    std::string last_hash;                      // hash of the last intact record
    std::string last_file;                      // where the last intact record is
    bool continues = false;                     // the first file starts mid-chain (seq > 1)
    bool truncated = false;                     // the broken record is an incomplete last line
    // When !ok: the first broken record.
    std::string file;
    std::uint64_t line = 0;
    std::uint64_t seq = 0;  // 0 when the line is not a readable record
    std::string problem;    // one sentence
};

// Checks `files`, in order, as one chain: each line a sealed record, seq
// gapless, each hash over its record's content, each prev_hash the hash of
// the record before it (the genesis hash before seq 1; a chain may start
// mid-way, as a rotated log does). Reads line by line; stops at the first
// broken record and names it.
//
// With `head` (the chain head the daemon holds, when the last file is its
// current log), the record with head->seq must have head->hash and the
// chain must reach head->seq: removing the last records of a log leaves an
// intact chain, which only the daemon's head reveals.
VerifyResult verify_chain(const std::vector<std::pair<std::string, std::istream*>>& files,
                          const ChainHead* head = nullptr);

// --- Reading the stream ---------------------------------------------------------

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

// One readable line, without a newline: ts, #seq, type, the context. Values
// are untrusted (comm, reason): control characters and invalid UTF-8 are
// escaped, so a record cannot move the cursor or forge another line.
std::string render_event_human(const json& record);
// For a deny record (a local user's, or a remote source's): the command
// that asks for access, "jitgate request 5432/tcp --for 30m --reason WHY"
// (with --from SRC for a remote source); empty for any other record.
std::string access_hint(const json& record);

// `text` with the same escapes (control characters as \n, \x1b, \u009b...,
// invalid UTF-8 as \xff, quotes and backslashes), without adding quotes.
std::string printable(std::string_view text);

}  // namespace jg
