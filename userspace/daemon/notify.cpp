#include "daemon/notify.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "util/unique_fd.h"

namespace jg {

Result<bool> sd_notify_send(const std::string& state) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return false;
    const std::string p = path;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if ((p[0] != '/' && p[0] != '@') || p.size() >= sizeof(sa.sun_path))
        return err(fmt::format("NOTIFY_SOCKET={} is not a socket path", p));
    std::memcpy(sa.sun_path, p.data(), p.size());
    if (p[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
    const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + p.size() + (p[0] == '/'));
    const unique_fd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return err(fmt::format("notify systemd: socket: {}", std::strerror(errno)));
    const ssize_t n =
        sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), len);
    if (n < 0) return err(fmt::format("notify systemd at {}: {}", p, std::strerror(errno)));
    return true;
}

}  // namespace jg
