#include "core/audit.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <filesystem>
#include <fstream>

namespace jg {

std::string canonical(const json& record) {
    json copy = record;
    copy.erase("hash");
    return copy.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sha256_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    std::string out;
    out.reserve(len * 2);
    for (unsigned i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
    return out;
}

void seal(json& record, ChainHead& head) {
    record["seq"] = head.seq + 1;
    record["prev_hash"] = head.hash;
    record.erase("hash");
    std::string h = sha256_hex(canonical(record));
    record["hash"] = h;
    head.seq += 1;
    head.hash = std::move(h);
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

Result<ChainHead> read_chain_head(const std::string& path) {
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (st.type() == std::filesystem::file_type::not_found) return ChainHead{};
    if (st.type() != std::filesystem::file_type::regular)
        return err(fmt::format("the audit log {} is not a regular file", path));
    std::ifstream in(path, std::ios::binary);
    if (!in) return err(fmt::format("cannot read the audit log {}", path));
    in.seekg(0, std::ios::end);
    std::streamoff size = in.tellg();
    // Read back far enough to hold the last complete line.
    std::streamoff start = size > 65536 ? size - 65536 : 0;
    in.seekg(start);
    std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!tail.empty() && tail.back() == '\n') tail.pop_back();
    if (tail.empty()) return ChainHead{};
    auto nl = tail.rfind('\n');
    std::string last = nl == std::string::npos ? tail : tail.substr(nl + 1);
    json j = json::parse(last, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("seq") || !j.contains("hash") ||
        !j["seq"].is_number_unsigned() || !j["hash"].is_string())
        return err(
            fmt::format("the last line of the audit log {} is not a sealed audit record; "
                        "move the file aside (it is evidence) and start again",
                        path));
    return ChainHead{j["seq"].get<std::uint64_t>(), j["hash"].get<std::string>()};
}

}  // namespace jg
