#include "daemon/metrics_http.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace jg {

namespace {

void watch(int efd, int fd, std::uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    epoll_ctl(efd, op, fd, &ev);
}

}  // namespace

Result<MetricsHttp> MetricsHttp::listen(const MetricsAddress& a, int epoll_fd) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (a.v4) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a.port);
        std::memcpy(&sin->sin_addr, a.addr.data() + 12, 4);
        len = sizeof(sockaddr_in);
    } else {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a.port);
        std::memcpy(&sin6->sin6_addr, a.addr.data(), 16);
        len = sizeof(sockaddr_in6);
    }
    const std::string where = a.v4 ? fmt::format("{}:{}", format_addr(a.addr), a.port)
                                   : fmt::format("[{}]:{}", format_addr(a.addr), a.port);
    unique_fd fd(socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return err(fmt::format("metrics endpoint {}: socket: {}", where, std::strerror(errno)));
    const int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd.get(), 16) != 0) {
        const int e = errno;
        return err(fmt::format("cannot serve metrics on {}: {}{}", where, std::strerror(e),
                               e == EADDRINUSE ? "; choose another port with --metrics-address" : ""));
    }
    watch(epoll_fd, fd.get(), EPOLLIN, EPOLL_CTL_ADD);
    return MetricsHttp(std::move(fd), epoll_fd);
}

void MetricsHttp::accept_all() {
    for (int i = 0; i < 64; ++i) {
        unique_fd sock(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!sock) return;
        if (clients_.size() >= kMaxClients) continue;  // a scraper needs one; more is a flood (closed here)
        const int fd = sock.get();
        clients_[fd] = Client{std::move(sock), {}, {}, 0, std::chrono::steady_clock::now(), false};
        watch(epoll_fd_, fd, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
    }
}

void MetricsHttp::drop(int fd) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    clients_.erase(fd);  // closes it
}

void MetricsHttp::flush(int fd, Client& c) {
    while (c.sent < c.out.size()) {
        const ssize_t n = send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            watch(epoll_fd_, fd, EPOLLOUT, EPOLL_CTL_MOD);
            return;
        }
        if (n <= 0) return drop(fd);
        c.sent += static_cast<std::size_t>(n);
    }
    shutdown(fd, SHUT_WR);
    c.draining = true;
    watch(epoll_fd_, fd, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
}

void MetricsHttp::respond(int fd, Client& c, const std::function<Result<std::string>()>& body) {
    const auto end = c.in.find("\r\n\r\n");
    c.out = end == std::string::npos || end + 4 > kMaxRequestBytes
                ? metrics_http_too_large()
                : metrics_http_response(c.in.substr(0, end), body);
    c.in.clear();
    flush(fd, c);
}

void MetricsHttp::on_event(int fd, std::uint32_t events, const std::function<Result<std::string>()>& body) {
    if (fd == listen_fd_.get()) return accept_all();
    auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    Client& c = it->second;
    if (c.draining) {
        char sink[4096];
        for (int i = 0; i < 16; ++i) {  // bounded per event; expire_idle ends a client that never stops
            const ssize_t n = recv(fd, sink, sizeof(sink), 0);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
            if (n <= 0) return drop(fd);
        }
        return;
    }
    if (!c.out.empty()) {  // writing the response
        if (events & (EPOLLERR | EPOLLHUP)) return drop(fd);
        return flush(fd, c);
    }
    char buf[1024];
    for (;;) {
        const ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) return drop(fd);
        c.in.append(buf, static_cast<std::size_t>(n));
        if (c.in.find("\r\n\r\n") != std::string::npos || c.in.size() > kMaxRequestBytes)
            return respond(fd, c, body);
    }
}

void MetricsHttp::expire_idle() {
    const auto now = std::chrono::steady_clock::now();
    std::vector<int> stale;
    for (const auto& [fd, c] : clients_)
        if (now - c.since > kTimeout) stale.push_back(fd);
    for (int fd : stale) drop(fd);
}

}  // namespace jg
