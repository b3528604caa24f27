#include "cli/client.h"

#include <signal.h>

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "cli/web_transport.h"
#include "core/protocol.h"
#include "core/text.h"
#include "util/unique_fd.h"

namespace jg {

namespace {

constexpr int kReplyTimeoutMs = 30000;

Error unreachable(const std::string& path, const std::string& why) {
    return err(
        fmt::format("cannot reach jitgated at {}: {}; is it running? Start it with: sudo jitgated "
                    "--config /etc/jitgate/jitgate.toml (or pass --socket PATH)",
                    path, why));
}

// A connected socket with the request sent; closes on destruction.
class Connection {
public:
    int fd() const { return fd_.get(); }

    // Empty on success, else why not.
    std::string open(const std::string& path, const std::string& op, const nlohmann::json& args) {
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        if (path.size() >= sizeof(sa.sun_path)) return "the socket path is too long";
        std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
        fd_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd_) return std::strerror(errno);
        if (connect(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
            return std::strerror(errno);
        // Free text was checked before (free_text_refusal); whatever else
        // holds bytes that are not UTF-8 goes replaced rather than aborting.
        const std::string line = json_text({{"id", 1}, {"op", op}, {"args", args}}) + "\n";
        std::size_t off = 0;
        while (off < line.size()) {
            ssize_t n = send(fd_.get(), line.data() + off, line.size() - off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                // The daemon may refuse a connection (too many) by writing
                // one error line and closing before this request arrives:
                // that line is still there to read.
                if (errno == EPIPE || errno == ECONNRESET) return {};
                return std::strerror(errno);
            }
            off += static_cast<std::size_t>(n);
        }
        return {};
    }

private:
    unique_fd fd_;
};

}  // namespace

namespace {
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);
extern "C" void on_stop_signal(int) { g_stop.store(true); }
}  // namespace

const std::atomic<bool>& stop_on_signals(std::initializer_list<int> signals) {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART
    for (int sig : signals) sigaction(sig, &sa, nullptr);
    return g_stop;
}

Result<nlohmann::json> call_daemon(const Endpoint& to, const std::string& op, const nlohmann::json& args,
                                   int reply_timeout_ms) {
    if (!to.web.empty()) return web_call(to.web, op, args, reply_timeout_ms);
    const std::string& path = to.socket;
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::milliseconds(reply_timeout_ms);
    Connection c;
    if (auto why = c.open(path, op, args); !why.empty()) return unreachable(path, why);
    std::string in;
    char buf[8192];
    for (;;) {
        pollfd p{c.fd(), POLLIN, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        int pr = left.count() > 0 ? poll(&p, 1, static_cast<int>(left.count())) : 0;
        if (pr == 0)
            return unreachable(path, fmt::format("no reply within {}",
                                                 reply_timeout_ms % 1000 == 0
                                                     ? fmt::format("{} seconds", reply_timeout_ms / 1000)
                                                     : fmt::format("{} ms", reply_timeout_ms)));
        if (pr < 0) {
            if (errno == EINTR) continue;
            break;
        }
        ssize_t n = recv(c.fd(), buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
        if (in.find('\n') != std::string::npos || in.size() > kMaxReplyLineBytes) break;
    }
    auto nl = in.find('\n');
    if (nl == std::string::npos) return unreachable(path, "the connection closed before a reply");
    auto j = nlohmann::json::parse(in.substr(0, nl), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("ok"))
        return unreachable(path, "the reply is not valid");
    return j;
}

namespace {

// The lines a stream would have brought, from jitgate-web's one reply: its
// "events" as event lines, then the reply.
Result<int> stream_over_web(const Endpoint& to, const std::string& op, const nlohmann::json& args,
                            const std::function<bool(const nlohmann::json& line)>& on_line) {
    auto reply = web_call(to.web, op, args, kReplyTimeoutMs);
    if (!reply) return err(reply.error());
    nlohmann::json r = std::move(*reply);
    if (auto ev = r.find("events"); ev != r.end()) {
        if (ev->is_array())
            for (auto& e : *ev)
                if (!on_line({{"ok", true}, {"event", std::move(e)}})) return int(kStreamStopped);
        r.erase("events");
    }
    return on_line(r) ? int(kStreamClosed) : int(kStreamStopped);
}

}  // namespace

Result<int> stream_daemon(const Endpoint& to, const std::string& op, const nlohmann::json& args,
                          const std::function<bool(const nlohmann::json& line)>& on_line,
                          const std::atomic<bool>* stop) {
    if (!to.web.empty()) return stream_over_web(to, op, args, on_line);
    const std::string& path = to.socket;
    using Clock = std::chrono::steady_clock;
    Connection c;
    if (auto why = c.open(path, op, args); !why.empty()) return unreachable(path, why);
    bool replied = false;  // a line with "result" or "error" arrived
    std::uint64_t lines = 0;
    auto deadline = Clock::now() + std::chrono::milliseconds(kReplyTimeoutMs);
    std::string in;
    std::size_t scanned = 0;  // bytes of `in` known to hold no newline
    char buf[65536];
    for (;;) {
        // Hand over every complete line first.
        std::size_t begin = 0;
        for (std::size_t nl; (nl = in.find('\n', std::max(begin, scanned))) != std::string::npos;
             begin = nl + 1) {
            auto j = nlohmann::json::parse(in.data() + begin, in.data() + nl, nullptr, false);
            if (j.is_discarded() || !j.is_object() || !j.contains("ok"))
                return err(
                    fmt::format("jitgated sent a line that is not a valid reply (after {} lines)", lines));
            ++lines;
            replied = replied || j.contains("result") || j.contains("error");
            if (!on_line(j)) return int(kStreamStopped);
            deadline = Clock::now() + std::chrono::milliseconds(kReplyTimeoutMs);
        }
        in.erase(0, begin);
        scanned = in.size();
        if (in.size() > kMaxReplyLineBytes)
            return err(fmt::format("jitgated sent a line longer than {} bytes", kMaxReplyLineBytes));
        if (stop && stop->load()) return int(kStreamInterrupted);
        // Before the reply, wait at most until the deadline; after it, for
        // ever; and wake up now and then to notice *stop.
        int wait = -1;
        if (!replied) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0)
                return lines == 0 ? Result<int>(unreachable(path, "no reply within 30 seconds"))
                                  : Result<int>(err("jitgated stopped sending before its reply"));
            wait = static_cast<int>(left.count());
        }
        if (stop) wait = wait < 0 ? 200 : std::min(wait, 200);
        pollfd p{c.fd(), POLLIN, 0};
        const int pr = poll(&p, 1, wait);
        if (pr == 0) continue;
        if (pr < 0) {
            if (errno == EINTR) continue;
            return err(fmt::format("waiting for jitgated failed: {}", std::strerror(errno)));
        }
        const ssize_t n = recv(c.fd(), buf, sizeof(buf), 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) return err(fmt::format("reading from jitgated failed: {}", std::strerror(errno)));
        if (n == 0) {
            if (lines == 0) return unreachable(path, "the connection closed before a reply");
            return int(kStreamClosed);
        }
        in.append(buf, static_cast<std::size_t>(n));
    }
}

}  // namespace jg
