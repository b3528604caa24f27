#include "cli/policy_push.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <variant>

#include "core/operations.h"
#include "core/protocol.h"
#include "core/text.h"

namespace jg {

nlohmann::json read_policy_push(const std::string& file, nlohmann::json& args) {
    auto refuse = [&](const char* code, const std::string& why) {
        return nlohmann::json{{"code", code}, {"message", fmt::format("cannot push {}: {}", file, why)}};
    };
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) return refuse("unreadable", "it is a directory");
    std::ifstream in(file, std::ios::binary);
    if (!in) return refuse("unreadable", std::strerror(errno));
    // At most one byte past the bound: a longer file is not read whole.
    std::string text(kMaxPolicyPushBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad()) return refuse("unreadable", "reading it failed");
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxPolicyPushBytes) {
        const auto size = std::filesystem::file_size(file, ec);
        return refuse(code::kInvalid,
                      fmt::format("it is {}, and a fleet policy file must be at most {} KiB (it travels in "
                                  "one etcd value); shorten it",
                                  ec ? std::string("longer") : fmt::format("{} bytes", size),
                                  kMaxPolicyPushBytes / 1024));
    }
    // TOML is UTF-8; sent as JSON, other bytes would turn into U+FFFD unseen.
    for (std::size_t i = 0; i < text.size();) {
        std::uint32_t cp = 0;
        const std::size_t n = utf8_at(text, i, cp);
        if (n == 0)
            return refuse(code::kInvalid,
                          fmt::format("byte {} is not UTF-8, and a policy file is UTF-8 text", i + 1));
        i += n;
    }
    args = {{"text", text}, {"file", file}};
    // What else jitgated checks of these arguments (the file name is
    // printable text), said here rather than after a round trip.
    auto parsed = parse_as<PolicyPushArgs>(args);
    if (auto* e = std::get_if<OpError>(&parsed))
        return nlohmann::json{{"code", e->code}, {"message", e->message}};
    return nlohmann::json::object();
}

}  // namespace jg
