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

Result<AddrWatcher> AddrWatcher::open() {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return err(fmt::format("open rtnetlink: {}", std::strerror(errno)));
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_LINK;
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        return err(fmt::format("subscribe to address and interface changes: {}", std::strerror(e)));
    }
    return AddrWatcher(fd);
}

AddrWatcher::~AddrWatcher() {
    if (fd_ >= 0) close(fd_);
}

void AddrWatcher::drain() {
    // The messages themselves are not needed: any change makes the daemon
    // re-read the whole address list (current_addresses) and the XDP
    // interfaces, which also covers messages the kernel dropped (ENOBUFS).
    char buf[16384];
    while (recv(fd_, buf, sizeof(buf), 0) > 0) {
    }
}

}  // namespace jg
