#include "fleet/gateway_json.h"

#include <charconv>

namespace jg::fleet {

using json = nlohmann::json;

// --- base64 (the gateway's bytes)

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

std::string b64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
        for (int s = 18; s >= 0; s -= 6) out += kB64[(v >> s) & 63];
    }
    if (i < in.size()) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < in.size()) v |= (unsigned char)in[i + 1] << 8;
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

namespace {

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;  // '-' and '_': the URL-safe alphabet, accepted too
    if (c == '/' || c == '_') return 63;
    return -1;
}

}  // namespace

// Strict but accepting missing padding; nullopt on any other character.
std::optional<std::string> b64_decode(std::string_view in) {
    while (!in.empty() && in.back() == '=') in.remove_suffix(1);
    if (in.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(in.size() * 3 / 4);
    unsigned acc = 0;
    int bits = 0;
    for (char c : in) {
        int v = b64_value(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | unsigned(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char((acc >> bits) & 0xff);
        }
    }
    return out;
}

// --- typed reads of the gateway's JSON (absent: the zero value)

bool read_i64(const json& obj, const char* name, std::int64_t& out) {
    out = 0;
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return true;
    if (it->is_number_integer()) {
        out = it->get<std::int64_t>();
        return true;
    }
    if (!it->is_string()) return false;
    const auto& s = it->get_ref<const std::string&>();
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool read_bytes(const json& obj, const char* name, std::string& out) {
    out.clear();
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return true;
    if (!it->is_string()) return false;
    auto d = b64_decode(it->get_ref<const std::string&>());
    if (!d) return false;
    out = std::move(*d);
    return true;
}

bool read_bool(const json& obj, const char* name, bool& out) {
    out = false;
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return true;
    if (!it->is_boolean()) return false;
    out = it->get<bool>();
    return true;
}

bool read_kv(const json& j, KeyValue& kv) {
    return j.is_object() && read_bytes(j, "key", kv.key) && read_bytes(j, "value", kv.value) &&
           read_i64(j, "create_revision", kv.create_revision) &&
           read_i64(j, "mod_revision", kv.mod_revision) && read_i64(j, "version", kv.version) &&
           read_i64(j, "lease", kv.lease);
}

bool read_header_revision(const json& j, std::int64_t& rev) {
    auto it = j.find("header");
    if (it == j.end()) {
        rev = 0;
        return true;
    }
    return it->is_object() && read_i64(*it, "revision", rev);
}

}  // namespace jg::fleet
