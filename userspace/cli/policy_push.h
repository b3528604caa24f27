#pragma once
// jitgate policy push FILE: the file read into the arguments of op
// policy_push, refused here when jitgated would refuse it (too long).
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

namespace jg {

// The longest fleet policy file: it travels in one control line and one
// etcd value.  The same bound as core/operations.cpp's kPolicyTextMax
// (tests/unit/test_cli_fleet.cpp holds the two together).
inline constexpr std::size_t kMaxPolicyPushBytes = 48 * 1024;

// Reads `file` into args {"text", "file"}; the error object (code,
// message) when it cannot be read or is longer than kMaxPolicyPushBytes,
// checked before any of it is sent; an empty object when all is well.
nlohmann::json read_policy_push(const std::string& file, nlohmann::json& args);

}  // namespace jg
