#include "core/audit_tail.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/protocol.h"
#include "util/unique_fd.h"

namespace jg {

Result<LogTail> read_log_tail(const std::string& path) {
    LogTail t;
    const unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) return t;
        return err(fmt::format("cannot read the audit log {}: {}", path, std::strerror(errno)));
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        return err(fmt::format("the audit log {} is not a regular file", path));
    const off_t size = st.st_size;
    const off_t window = static_cast<off_t>(kMaxAuditLineBytes);
    const off_t start = size > window ? size - window : 0;
    std::string tail(static_cast<std::size_t>(size - start), '\0');
    std::size_t got = 0;
    while (got < tail.size()) {
        const ssize_t n = pread(fd.get(), tail.data() + got, tail.size() - got, start + off_t(got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += std::size_t(n);
    }
    tail.resize(got);
    if (tail.empty()) return t;
    t.empty = false;
    if (tail.back() != '\n') {
        t.incomplete = true;
        const auto nl = tail.rfind('\n');
        tail.resize(nl == std::string::npos ? 0 : nl + 1);
    }
    t.complete_bytes = std::uint64_t(start) + tail.size();
    while (!tail.empty() && tail.back() == '\n') tail.pop_back();
    if (tail.empty()) return t;
    const auto nl = tail.rfind('\n');
    const std::string last = nl == std::string::npos ? tail : tail.substr(nl + 1);
    const json j = parse_json_bounded(last);
    if (j.is_discarded() || !j.is_object() || !j.contains("seq") || !j.contains("hash") ||
        !j["seq"].is_number_unsigned() || !j["hash"].is_string()) {
        t.unreadable_last = true;
        return t;
    }
    t.head = ChainHead{j["seq"].get<std::uint64_t>(), j["hash"].get<std::string>()};
    if (j.contains("prev_hash") && j["prev_hash"].is_string())
        t.prev_hash = j["prev_hash"].get<std::string>();
    return t;
}

}  // namespace jg
