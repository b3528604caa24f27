#pragma once
// The etcd JSON gateway's encoding (etcd 3.4): bytes as base64, int64 as
// decimal strings, fields at their zero value left out.  Every read checks
// the field's type: what the gateway sends is untrusted.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "fleet/etcd_client.h"

namespace jg::fleet {

std::string b64_encode(std::string_view in);
std::optional<std::string> b64_decode(std::string_view in);

// Typed reads of a field of `obj` (absent or null: the zero value); false
// when it has another type or does not decode.
bool read_i64(const nlohmann::json& obj, const char* name, std::int64_t& out);
bool read_bytes(const nlohmann::json& obj, const char* name, std::string& out);
bool read_bool(const nlohmann::json& obj, const char* name, bool& out);
// A key-value of a range or watch response.
bool read_kv(const nlohmann::json& j, KeyValue& kv);
// A response's header.revision (no header: 0).
bool read_header_revision(const nlohmann::json& j, std::int64_t& rev);

}  // namespace jg::fleet
