#pragma once
// Verification of an audit chain, file by file, line by line.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "core/audit_chain.h"

namespace jg {

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

// A head this node published to the fleet (design.md §7.3): its log must
// hold a record of that seq with that hash.
struct WitnessedHead {
    std::uint64_t seq = 0;
    std::string hash;
    std::int64_t time_us = 0;  // when it was published
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
//
// With `witnessed` (the heads this node published to the fleet, when the
// last file is its current log), every record with one of their seqs must
// have its hash, and the chain must reach the highest: a log cut and its
// head file fixed on the host still falls short of what the fleet holds.
VerifyResult verify_chain(const std::vector<std::pair<std::string, std::istream*>>& files,
                          const ChainHead* head = nullptr,
                          const std::vector<WitnessedHead>* witnessed = nullptr);

}  // namespace jg
