#pragma once
// GET /metrics over HTTP/1.x on a loopback address, for Prometheus: a tiny
// non-blocking server on the daemon's epoll loop.  Each connection gets one
// response and is closed; requests are bounded in size, connections in
// number and in time.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/metrics.h"
#include "core/result.h"
#include "util/unique_fd.h"

namespace jg {

class MetricsHttp {
public:
    static constexpr std::size_t kMaxRequestBytes = 4096;
    static constexpr std::size_t kMaxClients = 16;
    // A client that has not sent its request, or not read the response, within this is closed.
    static constexpr std::chrono::seconds kTimeout{5};

    static Result<MetricsHttp> listen(const MetricsAddress& a, int epoll_fd);
    MetricsHttp(MetricsHttp&&) noexcept = default;
    MetricsHttp(const MetricsHttp&) = delete;

    bool owns(int fd) const { return fd == listen_fd_.get() || clients_.count(fd) != 0; }
    // `body` gives the exposition text, asked only for a GET /metrics.
    void on_event(int fd, std::uint32_t events, const std::function<Result<std::string>()>& body);
    void expire_idle();

private:
    struct Client {
        unique_fd sock;
        std::string in, out;
        std::size_t sent = 0;
        std::chrono::steady_clock::time_point since;
        // The response is out: what the client still sends is read and
        // dropped until it closes (closing with unread bytes would reset the
        // connection, and the client could lose the response).
        bool draining = false;
    };
    MetricsHttp(unique_fd lfd, int efd) : listen_fd_(std::move(lfd)), epoll_fd_(efd) {}
    void accept_all();
    void drop(int fd);
    void respond(int fd, Client& c, const std::function<Result<std::string>()>& body);
    void flush(int fd, Client& c);

    unique_fd listen_fd_;
    int epoll_fd_ = -1;
    std::map<int, Client> clients_;
};

}  // namespace jg
