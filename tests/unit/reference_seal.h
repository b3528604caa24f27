#pragma once
// The reference sealer, for tests only: a record sealed the slow, obvious
// way (a json object, its canonical() form hashed). jitgated writes with
// seal_line() alone; tests build chains with this and check that seal_line()
// writes the same bytes and hashes, so the two cannot drift apart unseen.
#include <string>
#include <utility>

#include "core/audit_chain.h"

namespace jg {

// Fills seq, prev_hash and hash of `record` (which already holds ts, type and
// its context) from `head`, and advances `head`.
inline void seal(json& record, ChainHead& head) {
    record["seq"] = head.seq + 1;
    record["prev_hash"] = head.hash;
    record.erase("hash");
    std::string h = sha256_hex(canonical(record));
    record["hash"] = h;
    head.seq += 1;
    head.hash = std::move(h);
}

}  // namespace jg
