#include "daemon/server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/protocol.h"

namespace jg {

Result<Server> Server::listen(const std::string& path, int epoll_fd) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof(sa.sun_path)) return err(fmt::format("socket path {} is too long", path));
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    unique_fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return err(fmt::format("socket: {}", std::strerror(errno)));
    // A socket file left by a dead daemon is removed; a live one is not.
    if (access(path.c_str(), F_OK) == 0) {
        const unique_fd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const bool live = probe && connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
        if (live) return err(fmt::format("another jitgated is already serving {}", path));
        unlink(path.c_str());
    }
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
        return err(fmt::format("bind {}: {}", path, std::strerror(errno)));
    // Anyone may talk to the daemon; who they are comes from SO_PEERCRED.
    chmod(path.c_str(), 0666);
    if (::listen(fd.get(), 128) != 0) return err(fmt::format("listen {}: {}", path, std::strerror(errno)));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd.get();
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd.get(), &ev);
    return Server(path, std::move(fd), epoll_fd);
}

// The clients' and the listening socket's descriptors close with their
// owners; a moved-from Server owns none and leaves the socket file alone.
Server::~Server() {
    if (listen_fd_) unlink(path_.c_str());
}

void Server::accept_all() {
    for (;;) {
        unique_fd sock(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!sock) return;
        const int fd = sock.get();
        ucred cred{};
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) continue;
        // The connection closes when `sock` goes out of scope.
        auto refuse = [fd](const std::string& why) {
            std::string busy = reply_error(0, code::kInternal, why);
            (void)!send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        };
        if (cred.uid != 0 && held_by(cred.uid) >= kMaxClientsPerUid) {
            refuse(fmt::format("too many open connections from uid {}; close some and retry", cred.uid));
            continue;
        }
        if (clients_.size() >= kMaxClients && !make_room(cred.uid)) {
            refuse("jitgated is serving too many clients; try again");
            continue;
        }
        ++per_uid_[cred.uid];
        Client c;
        c.sock = std::move(sock);
        c.peer = Peer{cred.uid, cred.gid, cred.pid, fd};
        c.last = std::chrono::steady_clock::now();
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.fd = fd;
        epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
        clients_.emplace(fd, std::move(c));
    }
}

std::size_t Server::held_by(uid_t uid) const {
    auto it = per_uid_.find(uid);
    return it == per_uid_.end() ? 0 : it->second;
}

// At the global cap, a newcomer gets the slot of a connection of the uid
// that holds the most, when that uid holds more than the newcomer would:
// connections from many uids (a subordinate uid range) cannot lock root or
// an approver out.  The longest idle connection goes first, audit streams
// last.  False when the newcomer already holds as many as anyone.
bool Server::make_room(uid_t uid) {
    uid_t top = 0;
    std::size_t most = 0;
    for (const auto& [u, n] : per_uid_)
        if (n > most) most = n, top = u;
    if (most <= held_by(uid) + 1) return false;
    int victim = -1;
    const Client* v = nullptr;
    for (const auto& [fd, c] : clients_) {
        if (c.peer.uid != top || c.dead) continue;
        if (!v || (v->following && !c.following) || (v->following == c.following && c.last < v->last))
            victim = fd, v = &c;
    }
    if (victim < 0) return false;
    const std::string why = reply_error(
        0, code::kInternal,
        fmt::format(
            "closed to make room: jitgated is at its limit of {} connections and uid {} holds the most "
            "({})",
            kMaxClients, top, most));
    (void)!send(victim, why.data(), why.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    drop(victim);
    return true;
}

void Server::drop(int fd) {
    auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    it->second.sock.reset();
    if (on_close) on_close(fd);
    auto u = per_uid_.find(it->second.peer.uid);
    if (u != per_uid_.end() && --u->second == 0) per_uid_.erase(u);
    clients_.erase(it);
}

void Server::flush(int fd, Client& c) {
    while (!c.out.empty()) {
        ssize_t n = send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            mark_dead(fd, c);
            return;
        }
        c.out.erase(0, static_cast<std::size_t>(n));
        // The backlog has gone: say what was not queued meanwhile.
        if (c.dropped && c.out.size() <= kMaxPendingOutput / 2) {
            c.out += c.dropped_line(c.stream_id, c.dropped);
            c.dropped = 0;
        }
    }
    // A client that does not read its replies is not read from either.
    const bool backlog = c.out.size() > kMaxPendingOutput;
    epoll_event ev{};
    ev.events = (backlog ? 0u : EPOLLIN | EPOLLRDHUP) | (c.out.empty() ? 0u : EPOLLOUT);
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
    if (c.out.empty() && c.closing) mark_dead(fd, c);
}

// Marked now, closed by reap(): a push may run while the caller walks its
// followers, or while on_event still holds this client.
void Server::mark_dead(int fd, Client& c) {
    if (c.dead) return;
    c.dead = true;
    dead_.push_back(fd);
}

void Server::reap() {
    std::vector<int> dead;
    dead.swap(dead_);
    for (int fd : dead) drop(fd);
}

void Server::on_event(int fd, std::uint32_t events, const Handler& h) {
    if (fd == listen_fd_.get()) {
        accept_all();
        return;
    }
    auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    Client& c = it->second;
    if (c.dead) return;
    if (events & EPOLLOUT) {
        flush(fd, c);
        if (c.dead) return reap();
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
    char buf[8192];
    bool eof = false;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0) {
            c.in.append(buf, static_cast<std::size_t>(n));
            if (c.in.size() > kMaxMessageBytes + 1) break;
            continue;
        }
        if (n == 0)
            eof = true;
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            eof = true;
        break;
    }
    std::size_t pos;
    while (!c.closing && !c.dead && c.out.size() <= kMaxPendingOutput &&
           (pos = c.in.find('\n')) != std::string::npos) {
        std::string line = c.in.substr(0, pos);
        c.in.erase(0, pos + 1);
        c.out += h(c.peer, line);
        c.last = std::chrono::steady_clock::now();
    }
    if (!c.closing && c.in.size() > kMaxMessageBytes) {
        c.out +=
            reply_error(0, code::kInvalid, fmt::format("message is larger than {} bytes", kMaxMessageBytes));
        c.closing = true;
        c.in.clear();
    }
    if (eof) {
        if (!c.in.empty() && !c.closing)
            c.out += reply_error(0, code::kInvalid, "message is truncated (no newline)");
        c.closing = true;
    }
    if (!c.dead) flush(fd, c);
    reap();
}

void Server::expire_idle() {
    const auto now = std::chrono::steady_clock::now();
    std::vector<int> idle;
    for (auto& [fd, c] : clients_)
        if (!c.following && now - c.last > kIdleTimeout) idle.push_back(fd);
    for (int fd : idle) drop(fd);
}

void Server::follow(int conn, std::int64_t id, DroppedLine dropped_line) {
    auto it = clients_.find(conn);
    if (it == clients_.end()) return;
    it->second.following = true;
    it->second.stream_id = id;
    it->second.dropped_line = std::move(dropped_line);
}

void Server::push(int conn, const std::string& line) {
    auto it = clients_.find(conn);
    if (it == clients_.end() || it->second.closing || it->second.dead) return;
    Client& c = it->second;
    if (c.out.size() > kMaxPendingOutput || c.dropped) {
        ++c.dropped;
        return;
    }
    const bool was_empty = c.out.empty();
    c.out += line;
    if (was_empty) flush(conn, c);
}

}  // namespace jg
