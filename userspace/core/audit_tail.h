#pragma once
// The end of an existing audit log, read to continue its chain.
#include <cstdint>
#include <optional>
#include <string>

#include "core/audit_chain.h"
#include "core/result.h"

namespace jg {

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

}  // namespace jg
