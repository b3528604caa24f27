#include "notify/state.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/protocol.h"
#include "util/unique_fd.h"

namespace jg::notify {

std::string state_path(const std::string& dir, const std::string& target) {
    return fmt::format("{}/{}.json", dir, target);
}

Result<std::optional<TargetState>> read_state(const std::string& dir, const std::string& target) {
    const std::string path = state_path(dir, target);
    const unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        if (errno == ENOENT) return std::optional<TargetState>{};
        return err(fmt::format("cannot read the notifier's state {}: {}", path, std::strerror(errno)));
    }
    char buf[512];
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) return err(fmt::format("cannot read the notifier's state {}: {}", path, std::strerror(errno)));
    const nlohmann::json j = parse_json_bounded(std::string(buf, std::size_t(n)));
    if (j.is_discarded() || !j.is_object() || !j.contains("seq") || !j["seq"].is_number_unsigned())
        return err(
            fmt::format("the notifier's state {} is not one it wrote; remove it to start that target from "
                        "the newest record",
                        path));
    TargetState s;
    s.seq = j["seq"].get<std::uint64_t>();
    s.delivered_us = j.value("delivered_us", std::int64_t(0));
    return std::optional<TargetState>{s};
}

Result<bool> write_state(const std::string& dir, const std::string& target, const TargetState& s) {
    const std::string path = state_path(dir, target);
    const std::string tmp = path + ".tmp";
    const std::string text = nlohmann::json{{"seq", s.seq}, {"delivered_us", s.delivered_us}}.dump() + "\n";
    auto fail = [&](const char* what) {
        const int e = errno;
        ::unlink(tmp.c_str());
        return err(fmt::format("cannot {} the notifier's state {}: {}", what, path, std::strerror(e)));
    };
    {
        const unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fd) return fail("write");
        if (::write(fd.get(), text.data(), text.size()) != ssize_t(text.size())) return fail("write");
        if (::fsync(fd.get()) != 0) return fail("sync");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("replace");
    const unique_fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d) ::fsync(d.get());
    return true;
}

}  // namespace jg::notify
