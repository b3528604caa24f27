#pragma once
// The control socket: line-delimited JSON over a Unix stream socket, the
// caller identified by SO_PEERCRED only.  Non-blocking, driven by the
// daemon's epoll loop.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "util/unique_fd.h"

namespace jg {

struct Peer {
    uid_t uid = 0;
    gid_t gid = 0;
    pid_t pid = 0;
    int conn = -1;  // the connection, for push() and follow()
};

class Server {
public:
    // Returns the reply line (with its newline) for one request line.
    using Handler = std::function<std::string(const Peer&, const std::string& line)>;

    // At this many, a newcomer takes the slot of a connection of the uid
    // that holds the most (make_room), or is refused.
    static constexpr std::size_t kMaxClients = 1024;
    // One user cannot take every slot: approvers and root must get through.
    static constexpr std::size_t kMaxClientsPerUid = 32;
    // A client that sends no complete request for this long is closed,
    // however many bytes it trickles.
    static constexpr std::chrono::seconds kIdleTimeout{30};
    // Replies a client does not read: past this, its requests are not read either.
    static constexpr std::size_t kMaxPendingOutput = 1 << 20;

    static Result<Server> listen(const std::string& path, int epoll_fd);
    Server(Server&&) noexcept = default;
    Server(const Server&) = delete;
    ~Server();

    bool owns(int fd) const { return fd == listen_fd_.get() || clients_.count(fd) != 0; }
    void on_event(int fd, std::uint32_t events, const Handler& h);
    void expire_idle();  // closes clients idle past kIdleTimeout

    // Streams: a following connection is exempt from the idle timeout and
    // receives pushed lines.  A line pushed while the connection has more
    // than kMaxPendingOutput unsent is not queued but counted, and the count
    // is sent (dropped_line(id, n)) as soon as the backlog has gone.
    using DroppedLine = std::function<std::string(std::int64_t id, std::uint64_t n)>;
    void follow(int conn, std::int64_t id, DroppedLine dropped_line);
    void push(int conn, const std::string& line);
    // Closes the connections that failed or finished since the last call;
    // the daemon calls it after each event, never while walking followers.
    void reap();
    // Called when a connection closes.
    std::function<void(int conn)> on_close;

private:
    struct Client {
        unique_fd sock;  // peer.conn
        Peer peer;
        std::string in, out;
        std::chrono::steady_clock::time_point last;
        bool closing = false;
        bool following = false;
        bool dead = false;  // closed at the next reap()
        std::int64_t stream_id = 0;
        std::uint64_t dropped = 0;
        DroppedLine dropped_line;
    };
    Server(std::string path, unique_fd lfd, int efd)
        : path_(std::move(path)), listen_fd_(std::move(lfd)), epoll_fd_(efd) {}
    void accept_all();
    std::size_t held_by(uid_t uid) const;
    bool make_room(uid_t uid);
    void drop(int fd);
    void flush(int fd, Client& c);
    void mark_dead(int fd, Client& c);

    std::string path_;
    unique_fd listen_fd_;
    int epoll_fd_ = -1;
    std::map<int, Client> clients_;
    std::map<uid_t, std::size_t> per_uid_;
    std::vector<int> dead_;
};

}  // namespace jg
