#include "core/audit_chain.h"

#include <algorithm>
#include <charconv>

#include "util/crypto_api.h"

namespace jg {

std::string canonical(const json& record) {
    json copy = record;
    copy.erase("hash");
    return copy.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

// SHA-256 fetched once: an implicit fetch on every digest costs more than
// hashing a record.
const EVP_MD* sha256_md() {
    static EVP_MD* md = jg::crypto().EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return md ? md : jg::crypto().EVP_sha256();
}

void append_sha256_hex(std::string_view data, std::string& out) {
    static constexpr char kHex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    jg::crypto().EVP_Digest(data.data(), data.size(), md, &len, sha256_md(), nullptr);
    for (unsigned i = 0; i < len; ++i) {
        out += kHex[md[i] >> 4];
        out += kHex[md[i] & 15];
    }
}

// The JSON string `t` as dump(-1, ' ', false, replace) writes it, appended
// to `out`: printable ASCII as it is, anything else through nlohmann.
void append_string(std::string_view t, std::string& out) {
    const bool plain = std::all_of(t.begin(), t.end(), [](char c) {
        const auto b = static_cast<unsigned char>(c);
        return b >= 0x20 && b < 0x80 && c != '"' && c != '\\';
    });
    if (plain) {
        out += '"';
        out += t;
        out += '"';
    } else {
        out += json(t).dump(-1, ' ', false, json::error_handler_t::replace);
    }
}

template <typename Int>
void append_int(Int n, std::string& out) {
    char buf[24];
    out.append(buf, std::to_chars(buf, buf + sizeof(buf), n).ptr);
}

// `v` as dump(-1, ' ', false, replace) writes it, appended to `out`; plain
// strings and integers without nlohmann's serialiser.
void append_value(const json& v, std::string& out) {
    if (v.is_string()) {
        append_string(v.get_ref<const std::string&>(), out);
        return;
    }
    if (v.is_number_unsigned() || v.is_number_integer()) {
        if (v.is_number_unsigned())
            append_int(v.get<std::uint64_t>(), out);
        else
            append_int(v.get<std::int64_t>(), out);
        return;
    }
    out += v.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string sha256_hex(std::string_view data) {
    std::string out;
    out.reserve(64);
    append_sha256_hex(data, out);
    return out;
}

// Replaces key's value with what `write` appends to text_.
template <typename Write>
AuditFields& AuditFields::put(std::string_view key, Write write) {
    std::erase_if(fields_, [&](const Field& f) { return f.key == key; });
    const std::size_t off = text_.size();
    write(text_);
    fields_.push_back({key, off, text_.size() - off});
    return *this;
}

AuditFields& AuditFields::add(std::string_view key, std::string_view text) {
    return put(key, [&](std::string& out) { append_string(text, out); });
}

AuditFields& AuditFields::add(std::string_view key, std::uint64_t n) {
    return put(key, [&](std::string& out) { append_int(n, out); });
}

AuditFields& AuditFields::add(std::string_view key, std::int64_t n) {
    return put(key, [&](std::string& out) { append_int(n, out); });
}

AuditFields& AuditFields::add_json(std::string_view key, const json& v) {
    return put(key, [&](std::string& out) { append_value(v, out); });
}

void AuditFields::clear() {
    text_.clear();
    fields_.clear();
}

std::vector<std::pair<std::string_view, std::string_view>> AuditFields::sorted() const {
    std::vector<std::pair<std::string_view, std::string_view>> out;
    out.reserve(fields_.size());
    for (const auto& f : fields_) out.emplace_back(f.key, std::string_view(text_).substr(f.off, f.len));
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    return out;
}

json AuditFields::to_json() const {
    json j = json::object();
    for (const auto& [k, v] : sorted()) j[std::string(k)] = json::parse(v, nullptr, false);
    return j;
}

void seal_line(const AuditFields& record, std::string_view ts, ChainHead& head, std::string& out) {
    thread_local std::vector<std::pair<std::string_view, std::string_view>> fields;
    thread_local std::string canon;
    const std::uint64_t seq = head.seq + 1;
    std::string seq_text, ts_text, prev_text = "\"" + head.hash + "\"";
    append_int(seq, seq_text);
    append_string(ts, ts_text);
    // ts, seq and prev_hash are the seal's; a record's own are not kept.
    fields.clear();
    fields.emplace_back("ts", ts_text);
    fields.emplace_back("seq", seq_text);
    fields.emplace_back("prev_hash", prev_text);
    for (const auto& [k, v] : record.sorted())
        if (k != "ts" && k != "seq" && k != "prev_hash" && k != "hash") fields.emplace_back(k, v);
    std::sort(fields.begin(), fields.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    auto put = [](std::string& to, std::size_t from, std::string_view k, std::string_view v) {
        if (to.size() > from + 1) to += ',';
        append_string(k, to);
        to += ':';
        to += v;
    };
    canon.assign(1, '{');
    for (const auto& [k, v] : fields) put(canon, 0, k, v);
    canon += '}';
    std::string hash;
    hash.reserve(64);
    append_sha256_hex(canon, hash);

    // The line: ts, seq, type first, the context, then prev_hash and hash.
    const std::size_t from = out.size();
    out += '{';
    auto first = [](std::string_view k) { return k == "ts" || k == "seq" || k == "type"; };
    for (std::string_view k : {"ts", "seq", "type"})
        for (const auto& [fk, v] : fields)
            if (fk == k) put(out, from, fk, v);
    for (const auto& [k, v] : fields)
        if (!first(k) && k != "prev_hash") put(out, from, k, v);
    put(out, from, "prev_hash", prev_text);
    out += ",\"hash\":\"";
    out += hash;
    out += "\"}\n";
    head.seq = seq;
    head.hash = std::move(hash);
}

void seal_line(const json& record, std::string_view ts, ChainHead& head, std::string& out) {
    thread_local AuditFields f;
    f.clear();
    for (const auto& [k, v] : record.items()) f.add_json(k, v);
    seal_line(f, ts, head, out);
}

std::string render_line(const json& sealed) {
    nlohmann::ordered_json o;
    for (const char* k : {"ts", "seq", "type"})
        if (sealed.contains(k)) o[k] = sealed[k];
    for (auto& [k, v] : sealed.items())
        if (k != "ts" && k != "seq" && k != "type" && k != "prev_hash" && k != "hash") o[k] = v;
    for (const char* k : {"prev_hash", "hash"})
        if (sealed.contains(k)) o[k] = sealed[k];
    return o.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace jg
