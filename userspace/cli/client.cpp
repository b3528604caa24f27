#include "cli/client.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/protocol.h"

namespace jg {

Result<nlohmann::json> call_daemon(const std::string& path, const std::string& op,
                                   const nlohmann::json& args) {
    auto unreachable = [&](const std::string& why) {
        return err(
            fmt::format("cannot reach jitgated at {}: {}; is it running? Start it with: sudo jitgated "
                        "--config /etc/jitgate/jitgate.toml (or pass --socket PATH)",
                        path, why));
    };
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof(sa.sun_path)) return unreachable("the socket path is too long");
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return unreachable(std::strerror(errno));
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        return unreachable(std::strerror(e));
    }
    const std::string line = nlohmann::json{{"id", 1}, {"op", op}, {"args", args}}.dump() + "\n";
    std::size_t off = 0;
    while (off < line.size()) {
        ssize_t n = send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return unreachable(std::strerror(e));
        }
        off += static_cast<std::size_t>(n);
    }
    std::string in;
    char buf[8192];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int pr = poll(&p, 1, 30000);
        if (pr == 0) {
            close(fd);
            return unreachable("no reply within 30 seconds");
        }
        if (pr < 0) {
            if (errno == EINTR) continue;
            break;
        }
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
        if (in.find('\n') != std::string::npos || in.size() > 64 * kMaxMessageBytes) break;
    }
    close(fd);
    auto nl = in.find('\n');
    if (nl == std::string::npos) return unreachable("the connection closed before a reply");
    auto j = nlohmann::json::parse(in.substr(0, nl), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("ok")) return unreachable("the reply is not valid");
    return j;
}

}  // namespace jg
