#pragma once
// Audit records: JSON Lines, each with a gapless `seq` and a SHA-256 chain
// (`prev_hash`, `hash`) over a canonical serialisation of the record.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

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

// The chain head after the last line of an existing log (empty log: genesis).
Result<ChainHead> read_chain_head(const std::string& path);

}  // namespace jg
