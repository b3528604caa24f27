#include "web/daemon_link.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/protocol.h"
#include "core/text.h"
#include "util/unique_fd.h"

namespace jg::web {

namespace {

constexpr std::size_t kMaxReplyBytes = 8 * 1024 * 1024;

json unreachable(const std::string& socket, const std::string& why) {
    return {{"ok", false},
            {"error",
             {{"code", code::kUnreachable},
              {"message", fmt::format("jitgate-web cannot reach jitgated at {}: {}; check that jitgated runs "
                                      "and that jitgate-web may open its socket",
                                      socket, why)}}}};
}

bool send_all(int fd, const std::string& line) {
    std::size_t off = 0;
    while (off < line.size()) {
        ssize_t n = send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno == EPIPE || errno == ECONNRESET;  // a refusal line may wait to be read
        off += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

json ask_daemon(const std::string& socket, const std::string& op, const json& args, const std::string& token,
                int timeout_ms) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (socket.size() >= sizeof(sa.sun_path)) return unreachable(socket, "the socket path is too long");
    std::memcpy(sa.sun_path, socket.c_str(), socket.size() + 1);
    unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd || connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
        return unreachable(socket, std::strerror(errno));
    json req = {{"id", 1}, {"op", op}, {"args", args}};
    if (!token.empty()) req["token"] = token;
    if (!send_all(fd.get(), json_text(req) + "\n")) return unreachable(socket, std::strerror(errno));
    using C = std::chrono::steady_clock;
    const auto deadline = C::now() + std::chrono::milliseconds(timeout_ms);
    json events = json::array();
    std::string in;
    char buf[65536];
    for (;;) {
        for (std::size_t nl; (nl = in.find('\n')) != std::string::npos; in.erase(0, nl + 1)) {
            json line = parse_json_bounded(std::string_view(in).substr(0, nl));
            if (line.is_discarded() || !line.is_object())
                return unreachable(socket, "its reply is not valid");
            if (auto e = line.find("event"); e != line.end()) {
                events.push_back(*e);
                continue;
            }
            if (!line.contains("result") && !line.contains("error")) continue;  // dropped counts
            line.erase("id");
            if (!events.empty()) line["events"] = std::move(events);
            return line;
        }
        if (in.size() > kMaxReplyBytes) return unreachable(socket, "its reply is too long");
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - C::now()).count();
        pollfd p{fd.get(), POLLIN, 0};
        const int pr = left > 0 ? poll(&p, 1, static_cast<int>(left)) : 0;
        if (pr == 0) return unreachable(socket, "no reply in time");
        if (pr < 0 && errno == EINTR) continue;
        const ssize_t n = pr < 0 ? -1 : recv(fd.get(), buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return unreachable(socket, "the connection closed before a reply");
        in.append(buf, static_cast<std::size_t>(n));
    }
}

}  // namespace jg::web
