#pragma once
// The audit chain: JSON Lines records, each with a gapless `seq` and a
// SHA-256 chain (`prev_hash`, `hash`) over a canonical serialisation of the
// record. seal_line() is the one sealer jitgated writes with; canonical()
// and render_line() are what a reader checks a line against.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jg {

using json = nlohmann::json;

inline constexpr const char* kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// A longer line is not an audit record (and is never held in memory whole).
inline constexpr std::size_t kMaxAuditLineBytes = 1024 * 1024;

// The canonical form hashed: the record without "hash", keys sorted, no
// whitespace, UTF-8 (invalid bytes replaced).
std::string canonical(const json& record);
std::string sha256_hex(std::string_view data);

// Chain state: the last record written.
struct ChainHead {
    std::uint64_t seq = 0;  // seq of the last record; 0 = none yet
    std::string hash = kGenesisHash;
};

// One log line of a sealed record: ts, seq and type first, then the context
// (sorted), then prev_hash and hash; newline-terminated.
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

// Seals `record` (type and context; its own ts, seq, prev_hash and hash are
// ignored) as the record after `head` with timestamp `ts`, appends its line
// to `out` and advances `head`. Each value is serialised once and the
// canonical form and the line are assembled from those texts: the line is
// render_line() of the sealed record, its hash sha256_hex(canonical()).
void seal_line(const AuditFields& record, std::string_view ts, ChainHead& head, std::string& out);
void seal_line(const json& record, std::string_view ts, ChainHead& head, std::string& out);

}  // namespace jg
