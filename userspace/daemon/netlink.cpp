#include "daemon/netlink.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace jg {

std::vector<Addr16> current_addresses() {
    std::vector<Addr16> out;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return out;
    auto add = [&out](const sockaddr* sa) {
        Addr16 a{};
        if (!sa) return;
        if (sa->sa_family == AF_INET) {
            a[10] = a[11] = 0xff;
            std::memcpy(a.data() + 12, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
        } else if (sa->sa_family == AF_INET6) {
            std::memcpy(a.data(), &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
        } else {
            return;
        }
        out.push_back(a);
    };
    for (ifaddrs* i = list; i; i = i->ifa_next) {
        add(i->ifa_addr);
        // A subnet's broadcast address reaches this host's listeners too.
        // The kernel derives it from the prefix (its local routing table
        // holds "broadcast a.b.c.255"), whether or not `brd` was given.
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
        if (i->ifa_flags & IFF_BROADCAST) add(i->ifa_broadaddr);
        if (i->ifa_netmask && i->ifa_netmask->sa_family == AF_INET) {
            const std::uint32_t ip =
                ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
            const std::uint32_t mask =
                ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr);
            if (mask != 0xffffffffu && mask != 0xfffffffeu) {
                sockaddr_in b{};
                b.sin_family = AF_INET;
                b.sin_addr.s_addr = htonl(ip | ~mask);
                add(reinterpret_cast<const sockaddr*>(&b));
            }
        }
    }
    freeifaddrs(list);
    return out;
}

namespace {

// One filtered route dump (strict checking asks the kernel to send only
// routes of `type`; a kernel without it sends all, filtered here too).
// false when the dump did not complete (socket, send or receive error, a
// netlink error, a dump interrupted by a change): the caller then keeps what
// it had, since a partial list would make AnyIP addresses look remote.
bool dump_routes(int family, unsigned char type, std::vector<SourceNet>& out) {
    const unique_fd sock(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!sock) return false;
    const int fd = sock.get();
    const int one = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
    const timeval wait{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    struct {
        nlmsghdr h;
        rtmsg r;
    } req{};
    req.h.nlmsg_len = sizeof(req);
    req.h.nlmsg_type = RTM_GETROUTE;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.r.rtm_family = static_cast<unsigned char>(family);
    req.r.rtm_type = type;
    if (send(fd, &req, sizeof(req), 0) != ssize_t(sizeof(req))) return false;
    bool complete = false;
    alignas(nlmsghdr) char buf[32768];
    for (bool done = false; !done;) {
        const ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) break;  // an error or the 2 s timeout: incomplete
        int len = int(n);
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_flags & NLM_F_DUMP_INTR) {
                done = true;
                break;
            }
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                complete = h->nlmsg_type == NLMSG_DONE;
                done = true;
                break;
            }
            if (h->nlmsg_type != RTM_NEWROUTE) continue;
            const auto* r = static_cast<const rtmsg*>(NLMSG_DATA(h));
            if (r->rtm_type != type || r->rtm_family != family) continue;
            SourceNet net;
            net.prefix = r->rtm_dst_len;
            if (family == AF_INET) net.addr[10] = net.addr[11] = 0xff;
            int alen = int(RTM_PAYLOAD(h));
            for (auto* a = RTM_RTA(r); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
                if (a->rta_type == RTA_DST && RTA_PAYLOAD(a) == (family == AF_INET ? 4u : 16u))
                    std::memcpy(net.addr.data() + (family == AF_INET ? 12 : 0), RTA_DATA(a), RTA_PAYLOAD(a));
            out.push_back(net);
        }
    }
    return complete;
}

}  // namespace

std::optional<std::vector<SourceNet>> current_local_routes() {
    std::vector<SourceNet> out;
    if (!dump_routes(AF_INET, RTN_LOCAL, out) || !dump_routes(AF_INET6, RTN_LOCAL, out) ||
        !dump_routes(AF_INET6, RTN_ANYCAST, out))
        return std::nullopt;
    return out;
}

Result<AddrWatcher> AddrWatcher::open() {
    unique_fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd) return err(fmt::format("open rtnetlink: {}", std::strerror(errno)));
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups =
        RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_LINK | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
        return err(
            fmt::format("subscribe to address, route and interface changes: {}", std::strerror(errno)));
    return AddrWatcher(std::move(fd));
}

void AddrWatcher::drain() {
    // The messages themselves are not needed: any change makes the daemon
    // re-read the whole address list (current_addresses), the local routes
    // and the XDP interfaces, which also covers messages the kernel dropped
    // (ENOBUFS).
    char buf[16384];
    while (recv(fd_.get(), buf, sizeof(buf), 0) > 0) {
    }
}

}  // namespace jg
