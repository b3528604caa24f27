#pragma once
// Each target's place in the audit stream: the last seq it acknowledged,
// one small file per target in the state directory, replaced atomically
// (temporary file, fsync, rename, fsync of the directory), so that a crash
// leaves the old value or the new one, never a torn one.
#include <cstdint>
#include <optional>
#include <string>

#include "core/result.h"

namespace jg::notify {

struct TargetState {
    std::uint64_t seq = 0;          // the last record delivered (acknowledged with 2xx)
    std::int64_t delivered_us = 0;  // when (wall clock); 0: never
};

std::string state_path(const std::string& dir, const std::string& target);
// Nothing when the target has no file yet; an error when it exists but
// cannot be read or is not ours.
Result<std::optional<TargetState>> read_state(const std::string& dir, const std::string& target);
Result<bool> write_state(const std::string& dir, const std::string& target, const TargetState& s);

}  // namespace jg::notify
