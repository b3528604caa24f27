#include "bpf/xdp_links.h"

#include <dirent.h>
#include <fmt/format.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/unique_fd.h"

namespace jg {

namespace {

constexpr const char* kXdpPinPrefix = "link_xdp_";

std::string xdp_pin(const std::string& dir, int ifindex) {
    return fmt::format("{}/{}{}", dir, kXdpPinPrefix, ifindex);
}

// The interface an XDP link is attached to; 0 once the interface is gone.
int xdp_link_ifindex(int fd, std::uint32_t* id) {
    bpf_link_info info{};
    std::uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return -1;
    if (id) *id = info.id;
    if (info.type != BPF_LINK_TYPE_XDP) return -1;
    return static_cast<int>(info.xdp.ifindex);
}

bool is_ethernet(const std::string& ifname) {
    const unique_fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return false;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    return ioctl(fd.get(), SIOCGIFHWADDR, &ifr) == 0 && ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER;
}

std::string xdp_mode(int ifindex) {
    bpf_xdp_query_opts q{};
    q.sz = sizeof(q);
    if (bpf_xdp_query(ifindex, 0, &q) != 0) return "unknown";
    switch (q.attach_mode) {
        case XDP_ATTACHED_DRV: return "native";
        case XDP_ATTACHED_SKB: return "generic";
        case XDP_ATTACHED_HW: return "offload";
        case XDP_ATTACHED_MULTI: return "multi";
    }
    return "none";
}

std::vector<std::string> xdp_pins(const std::string& dir) {
    std::vector<std::string> pins;
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d))
            if (std::strncmp(e->d_name, kXdpPinPrefix, std::strlen(kXdpPinPrefix)) == 0)
                pins.emplace_back(e->d_name);
        closedir(d);
    }
    return pins;
}

}  // namespace

void XdpLinks::adopt(const std::string& pin_dir, bpf_program* prog) {
    pin_dir_ = pin_dir;
    for (const auto& n : xdp_pins(pin_dir)) {
        const std::string path = pin_dir + "/" + n;
        XdpLink x;
        std::string what;
        const int e = adopt_pinned(path, prog, &x.link, &what);
        const int ifindex = e == 0 ? xdp_link_ifindex(x.link.fd(), nullptr) : -1;
        if (ifindex <= 0 || path != xdp_pin(pin_dir, ifindex)) {
            // The interface went away (the link is defunct), the update
            // failed, or the pin is not ours.  XDP is the early drop, not
            // the enforcement: sync attaches a fresh link if named.
            if (x.link) bpf_link__detach(x.link.get());
            unlink(path.c_str());
            continue;
        }
        char name[IF_NAMESIZE] = {};
        x.ifname = if_indextoname(static_cast<unsigned>(ifindex), name) ? name : std::to_string(ifindex);
        x.mode = xdp_mode(ifindex);
        links_[ifindex] = std::move(x);
    }
}

void XdpLinks::drop(int ifindex, bool detach) {
    auto it = links_.find(ifindex);
    if (it == links_.end()) return;
    if (detach) bpf_link__detach(it->second.link.get());
    unlink(xdp_pin(pin_dir_, ifindex).c_str());
    links_.erase(it);
}

void XdpLinks::attach(int prog_fd, int idx, const std::string& name) {
    XdpLink x;
    x.ifname = name;
    // Native where the driver has XDP support, generic (skb) otherwise.
    DECLARE_LIBBPF_OPTS(bpf_link_create_opts, native, .flags = XDP_FLAGS_DRV_MODE);
    unique_fd fd(bpf_link_create(prog_fd, idx, BPF_XDP, &native));
    if (!fd) {
        const int native_err = errno;
        DECLARE_LIBBPF_OPTS(bpf_link_create_opts, generic, .flags = XDP_FLAGS_SKB_MODE);
        fd.reset(bpf_link_create(prog_fd, idx, BPF_XDP, &generic));
        if (!fd) {
            const int e = errno;
            absent_[name] = e == EBUSY || e == EEXIST
                                ? "another XDP program is attached; jitgate does not replace it "
                                  "(cgroup_skb/ingress still enforces)"
                                : fmt::format("attach failed: {}", errstr(e));
            return;
        }
        x.note = fmt::format("native XDP unavailable: {}", errstr(native_err));
    }
    // Pinned, then owned like every other link (through its pin: libbpf
    // 1.1 has no bpf_link from a bare fd).
    const std::string pin = xdp_pin(pin_dir_, idx);
    const int pinned = bpf_obj_pin(fd.get(), pin.c_str()) == 0 ? 0 : errno;
    if (!pinned) x.link = Link(bpf_link__open(pin.c_str()));
    if (!x.link) {
        absent_[name] = fmt::format("pin {}: {}", pin, errstr(pinned ? pinned : errno));
        bpf_link_detach(fd.get());
        unlink(pin.c_str());
        return;
    }
    x.mode = xdp_mode(idx);
    links_[idx] = std::move(x);
}

void XdpLinks::sync(bpf_program* prog, const std::vector<std::string>& ifnames) {
    std::map<int, std::string> want;
    absent_.clear();
    for (const auto& n : ifnames) {
        const unsigned idx = if_nametoindex(n.c_str());
        if (idx == 0)
            absent_[n] = "no such interface yet; attached when it appears";
        else
            want[static_cast<int>(idx)] = n;
    }
    // Links whose interface went away or is no longer named.
    std::vector<std::pair<int, bool>> gone;
    for (auto& [idx, x] : links_) {
        const int now = xdp_link_ifindex(x.link.fd(), nullptr);
        if (now <= 0)
            gone.emplace_back(idx, false);
        else if (!want.count(idx))
            gone.emplace_back(idx, true);
        else
            x.ifname = want[idx];
    }
    for (auto [idx, detach] : gone) drop(idx, detach);

    const int prog_fd = bpf_program__fd(prog);
    for (const auto& [idx, name] : want) {
        if (links_.count(idx)) continue;
        // The parser starts at an Ethernet header; on a layer-3 device
        // (WireGuard, tun, ipip) generic XDP starts at the IP header.
        if (!is_ethernet(name)) {
            absent_[name] =
                "not an Ethernet interface; XDP is attached to Ethernet interfaces only "
                "(cgroup_skb/ingress still enforces)";
            continue;
        }
        attach(prog_fd, idx, name);
    }
}

std::vector<XdpStatus> XdpLinks::status() const {
    std::vector<XdpStatus> out;
    for (const auto& [idx, x] : links_) {
        XdpStatus s;
        s.ifname = x.ifname;
        s.ifindex = idx;
        s.mode = x.mode;
        s.note = x.note;
        s.attached = xdp_link_ifindex(x.link.fd(), &s.link_id) == idx;
        out.push_back(s);
    }
    for (const auto& [name, why] : absent_) {
        XdpStatus s;
        s.ifname = name;
        s.note = why;
        out.push_back(s);
    }
    return out;
}

std::vector<Repair> XdpLinks::detached() const {
    std::vector<Repair> out;
    for (const auto& [idx, x] : links_)
        if (xdp_link_ifindex(x.link.fd(), nullptr) <= 0 &&
            if_nametoindex(x.ifname.c_str()) == static_cast<unsigned>(idx))
            out.push_back({"xdp " + x.ifname, "the XDP link had been detached; attached again", true});
    return out;
}

}  // namespace jg
