#include "bpf/loader.h"

#include <bpf/btf.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>
#include <tuple>

#include "jitgate.skel.h"

namespace jg {

namespace {

std::function<void(const std::string&)> g_log;
bool g_verbose = false;

int libbpf_print(enum libbpf_print_level level, const char* fmt_, va_list ap) {
    if (level == LIBBPF_DEBUG && !g_verbose) return 0;
    char* buf = nullptr;
    int n = vasprintf(&buf, fmt_, ap);
    if (n < 0) return 0;
    std::string s(buf, static_cast<std::size_t>(n));
    free(buf);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    if (g_log && !s.empty()) g_log("libbpf: " + s);
    return n;
}

std::string errstr(int e) { return std::strerror(e < 0 ? -e : e); }

struct Hook {
    const char* name;
    bpf_program* (*prog)(jitgate_bpf*);
};

const Hook kHooks[] = {
    {"jg_connect4", [](jitgate_bpf* s) { return s->progs.jg_connect4; }},
    {"jg_connect6", [](jitgate_bpf* s) { return s->progs.jg_connect6; }},
    {"jg_sendmsg4", [](jitgate_bpf* s) { return s->progs.jg_sendmsg4; }},
    {"jg_sendmsg6", [](jitgate_bpf* s) { return s->progs.jg_sendmsg6; }},
    {"jg_egress", [](jitgate_bpf* s) { return s->progs.jg_egress; }},
    {"jg_ingress", [](jitgate_bpf* s) { return s->progs.jg_ingress; }},
    {"jg_ingress_guard", [](jitgate_bpf* s) { return s->progs.jg_ingress_guard; }},
    {"jg_bind4", [](jitgate_bpf* s) { return s->progs.jg_bind4; }},
    {"jg_bind6", [](jitgate_bpf* s) { return s->progs.jg_bind6; }},
};

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
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    const bool ok = ioctl(fd, SIOCGIFHWADDR, &ifr) == 0 && ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER;
    close(fd);
    return ok;
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

// Whether the running kernel's BTF has a function (a kfunc) of this name.
bool kernel_has_func(const char* name) {
    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) return false;
    const bool found = btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) >= 0;
    btf__free(vmlinux);
    return found;
}

std::string link_pin(const std::string& dir, const char* prog) { return dir + "/link_" + prog; }

// A link an earlier run pinned, now running `prog`: the swap leaves no moment
// without enforcement.  0, or -errno with *what saying which step failed.
int adopt_pinned(const std::string& pin, bpf_program* prog, Link* out, std::string* what) {
    Link link(bpf_link__open(pin.c_str()));
    if (!link) {
        *what = "open pinned link";
        return -errno;
    }
    if (int e = bpf_link__update_program(link.get(), prog)) {
        *what = "update program in pinned link";
        return e;
    }
    *out = std::move(link);
    return 0;
}

}  // namespace

void route_libbpf_log(std::function<void(const std::string&)> sink, bool verbose) {
    g_log = std::move(sink);
    g_verbose = verbose;
    libbpf_set_print(libbpf_print);
}

Result<std::unique_ptr<Kernel>> Kernel::open(const Options& o,
                                             const std::function<Result<bool>(Kernel&)>& prepare) {
    std::unique_ptr<Kernel> k(new Kernel());
    std::error_code ec;
    std::filesystem::create_directories(o.pin_dir, ec);
    if (ec) return err(fmt::format("create pin directory {}: {}", o.pin_dir, ec.message()));

    k->skel_ = jitgate_bpf__open();
    if (!k->skel_) return err(fmt::format("open the embedded BPF object: {}", errstr(errno)));
    bpf_map* maps[] = {
        k->skel_->maps.jg_ports,       k->skel_->maps.jg_grants_uid, k->skel_->maps.jg_grants_addr,
        k->skel_->maps.jg_grants_net,  k->skel_->maps.jg_flows,      k->skel_->maps.jg_deny_rl,
        k->skel_->maps.jg_local_addrs, k->skel_->maps.jg_config,     k->skel_->maps.jg_counters,
        k->skel_->maps.jg_events,      k->skel_->maps.jg_sk_state,   k->skel_->maps.jg_bind_ports,
        k->skel_->maps.jg_bind_users,  k->skel_->maps.jg_allow_rl,   k->skel_->maps.jg_local_nets};
    k->pinned_maps_.assign(std::begin(maps), std::end(maps));
    k->cgroup_dir_ = o.cgroup_dir;
    for (bpf_map* m : maps) {
        std::string path = o.pin_dir + "/" + bpf_map__name(m);
        if (int e = bpf_map__set_pin_path(m, path.c_str()))
            return err(fmt::format("set pin path {}: {}", path, errstr(e)));
    }
    // A ring pinned by an earlier run is reused as it is; any other size is
    // refused by the kernel's pinned-map check, so say which.
    {
        const std::string ring_pin = bpf_map__pin_path(k->skel_->maps.jg_events);
        int fd = bpf_obj_get(ring_pin.c_str());
        if (fd >= 0) {
            bpf_map_info info{};
            __u32 len = sizeof(info);
            const bool got = bpf_obj_get_info_by_fd(fd, &info, &len) == 0;
            close(fd);
            if (got && info.max_entries != o.ring_bytes)
                return err(fmt::format(
                    "the pinned event ring {} holds {} bytes, not the {} asked for: the size of a pinned "
                    "ring cannot change while enforcement stays attached (jitgated --uninstall, then start "
                    "again)",
                    ring_pin, info.max_entries, o.ring_bytes));
        }
    }
    if (int e = bpf_map__set_max_entries(k->skel_->maps.jg_events, o.ring_bytes))
        return err(fmt::format("size the event ring to {} bytes: {}", o.ring_bytes, errstr(e)));
    // Cutting connections needs the bpf_sock_destroy kfunc (Linux 6.5): without
    // it the hooks still refuse every packet, and status says what is missing.
    if (!kernel_has_func("bpf_sock_destroy")) {
        bpf_program__set_autoload(k->skel_->progs.jg_cut, false);
        k->cut_note_ =
            "this kernel has no bpf_sock_destroy (Linux 6.5 or later): connections are refused when "
            "their grant ends, not reset";
    }
    if (int e = jitgate_bpf__load(k->skel_)) {
        return err(fmt::format(
            "load the BPF programs: {} (the kernel needs BPF, BTF, cgroup sock_addr and sk_storage "
            "support; if an older jitgate left incompatible maps in {}, run jitgated --uninstall)",
            errstr(e), o.pin_dir));
    }
#define JG_VIEW(field, mapname)                                  \
    do {                                                         \
        auto v = decltype(k->field)::of(k->skel_->maps.mapname); \
        if (!v) return err(v.error());                           \
        k->field = *v;                                           \
    } while (0)
    JG_VIEW(ports, jg_ports);
    JG_VIEW(grants_uid, jg_grants_uid);
    JG_VIEW(grants_addr, jg_grants_addr);
    JG_VIEW(grants_net, jg_grants_net);
    JG_VIEW(deny_rl, jg_deny_rl);
    JG_VIEW(allow_rl, jg_allow_rl);
    JG_VIEW(local_addrs, jg_local_addrs);
    JG_VIEW(local_nets, jg_local_nets);
    JG_VIEW(config, jg_config);
    JG_VIEW(bind_ports, jg_bind_ports);
    JG_VIEW(bind_users, jg_bind_users);
#undef JG_VIEW
    k->counters_fd_ = bpf_map__fd(k->skel_->maps.jg_counters);
    k->pin_dir_ = o.pin_dir;
    if (k->cut_note_.empty()) {
        // Not pinned: the iterator runs only while a daemon does.
        k->cut_link_ = Link(bpf_program__attach_iter(k->skel_->progs.jg_cut, nullptr));
        if (!k->cut_link_)
            k->cut_note_ = fmt::format(
                "the TCP socket iterator could not be attached ({}): connections "
                "are refused when their grant ends, not reset",
                errstr(errno));
    }
    {
        struct stat sb {};
        if (stat(o.cgroup_dir.c_str(), &sb) == 0) k->skel_->bss->jg_cut_cgroup_id = sb.st_ino;
    }

    if (prepare) {
        auto r = prepare(*k);
        if (!r) return err(r.error());
    }

    int cg = ::open(o.cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cg < 0) return err(fmt::format("open cgroup {}: {}", o.cgroup_dir, errstr(errno)));
    for (const Hook& h : kHooks) {
        bpf_program* prog = h.prog(k->skel_);
        const std::string pin = link_pin(o.pin_dir, h.name);
        Link link;
        if (access(pin.c_str(), F_OK) == 0) {
            std::string what;
            if (int e = adopt_pinned(pin, prog, &link, &what)) {
                if (e != -ENOLINK) {
                    close(cg);
                    return err(fmt::format("{} {}: {}", what, pin, errstr(e)));
                }
                // Someone detached the link while its pin stayed: attach
                // anew (nothing enforced this hook meanwhile) and say so.
                unlink(pin.c_str());
                k->reattached_.emplace_back(h.name);
            }
        }
        if (!link) {
            link = Link(bpf_program__attach_cgroup(prog, cg));
            if (!link) {
                int e = errno;
                close(cg);
                return err(fmt::format("attach {} to {}: {}", bpf_program__section_name(prog), o.cgroup_dir,
                                       errstr(e)));
            }
            if (int e = bpf_link__pin(link.get(), pin.c_str())) {
                close(cg);
                return err(fmt::format("pin link {}: {}", pin, errstr(e)));
            }
        }
        k->links_.emplace_back(h.name, std::move(link));
    }
    close(cg);

    // XDP links of an earlier run: keep enforcing with the new program; the
    // daemon's sync_xdp then decides which interfaces keep one.
    if (DIR* d = opendir(o.pin_dir.c_str())) {
        std::vector<std::string> pins;
        while (dirent* e = readdir(d))
            if (std::strncmp(e->d_name, kXdpPinPrefix, std::strlen(kXdpPinPrefix)) == 0)
                pins.emplace_back(e->d_name);
        closedir(d);
        for (const auto& n : pins) {
            const std::string path = o.pin_dir + "/" + n;
            XdpLink x;
            std::string what;
            const int e = adopt_pinned(path, k->skel_->progs.jg_xdp, &x.link, &what);
            const int ifindex = e == 0 ? xdp_link_ifindex(bpf_link__fd(x.link.get()), nullptr) : -1;
            if (ifindex <= 0 || path != xdp_pin(o.pin_dir, ifindex)) {
                // The interface went away (the link is defunct), the update
                // failed, or the pin is not ours.  XDP is the early drop, not
                // the enforcement: sync_xdp attaches a fresh link if named.
                if (x.link) bpf_link__detach(x.link.get());
                unlink(path.c_str());
                continue;
            }
            char name[IF_NAMESIZE] = {};
            x.ifname = if_indextoname(static_cast<unsigned>(ifindex), name) ? name : std::to_string(ifindex);
            x.mode = xdp_mode(ifindex);
            k->xdp_[ifindex] = std::move(x);
        }
    }
    return k;
}

void Kernel::drop_xdp(int ifindex, bool detach) {
    auto it = xdp_.find(ifindex);
    if (it == xdp_.end()) return;
    if (detach) bpf_link__detach(it->second.link.get());
    unlink(xdp_pin(pin_dir_, ifindex).c_str());
    xdp_.erase(it);
}

void Kernel::sync_xdp(const std::vector<std::string>& ifnames) {
    std::map<int, std::string> want;
    xdp_absent_.clear();
    for (const auto& n : ifnames) {
        const unsigned idx = if_nametoindex(n.c_str());
        if (idx == 0)
            xdp_absent_[n] = "no such interface yet; attached when it appears";
        else
            want[static_cast<int>(idx)] = n;
    }
    // Links whose interface went away or is no longer named.
    std::vector<std::pair<int, bool>> gone;
    for (auto& [idx, x] : xdp_) {
        const int now = xdp_link_ifindex(bpf_link__fd(x.link.get()), nullptr);
        if (now <= 0)
            gone.emplace_back(idx, false);
        else if (!want.count(idx))
            gone.emplace_back(idx, true);
        else
            x.ifname = want[idx];
    }
    for (auto [idx, detach] : gone) drop_xdp(idx, detach);

    const int prog = bpf_program__fd(skel_->progs.jg_xdp);
    for (const auto& [idx, name] : want) {
        if (xdp_.count(idx)) continue;
        XdpLink x;
        x.ifname = name;
        // The parser starts at an Ethernet header; on a layer-3 device
        // (WireGuard, tun, ipip) generic XDP starts at the IP header.
        if (!is_ethernet(name)) {
            xdp_absent_[name] =
                "not an Ethernet interface; XDP is attached to Ethernet interfaces only "
                "(cgroup_skb/ingress still enforces)";
            continue;
        }
        // Native where the driver has XDP support, generic (skb) otherwise.
        DECLARE_LIBBPF_OPTS(bpf_link_create_opts, native, .flags = XDP_FLAGS_DRV_MODE);
        int fd = bpf_link_create(prog, idx, BPF_XDP, &native);
        if (fd < 0) {
            const int native_err = errno;
            DECLARE_LIBBPF_OPTS(bpf_link_create_opts, generic, .flags = XDP_FLAGS_SKB_MODE);
            fd = bpf_link_create(prog, idx, BPF_XDP, &generic);
            if (fd < 0) {
                const int e = errno;
                xdp_absent_[name] = e == EBUSY || e == EEXIST
                                        ? "another XDP program is attached; jitgate does not replace it "
                                          "(cgroup_skb/ingress still enforces)"
                                        : fmt::format("attach failed: {}", errstr(e));
                continue;
            }
            x.note = fmt::format("native XDP unavailable: {}", errstr(native_err));
        }
        // Pinned, then owned like every other link (through its pin:
        // libbpf 1.1 has no bpf_link from a bare fd).
        const std::string pin = xdp_pin(pin_dir_, idx);
        const int pinned = bpf_obj_pin(fd, pin.c_str()) == 0 ? 0 : errno;
        if (!pinned) x.link = Link(bpf_link__open(pin.c_str()));
        if (!x.link) {
            xdp_absent_[name] = fmt::format("pin {}: {}", pin, errstr(pinned ? pinned : errno));
            bpf_link_detach(fd);
            close(fd);
            unlink(pin.c_str());
            continue;
        }
        close(fd);
        x.mode = xdp_mode(idx);
        xdp_[idx] = std::move(x);
    }
}

std::vector<XdpStatus> Kernel::xdp() const {
    std::vector<XdpStatus> out;
    for (const auto& [idx, x] : xdp_) {
        XdpStatus s;
        s.ifname = x.ifname;
        s.ifindex = idx;
        s.mode = x.mode;
        s.note = x.note;
        s.attached = xdp_link_ifindex(bpf_link__fd(x.link.get()), &s.link_id) == idx;
        out.push_back(s);
    }
    for (const auto& [name, why] : xdp_absent_) {
        XdpStatus s;
        s.ifname = name;
        s.note = why;
        out.push_back(s);
    }
    return out;
}

Kernel::~Kernel() {
    xdp_.clear();    // pinned: they stay attached
    links_.clear();  // links before the skeleton; pinned links stay attached
    if (skel_) jitgate_bpf__destroy(skel_);
}

int Kernel::events_map_fd() const { return bpf_map__fd(skel_->maps.jg_events); }

Result<std::vector<jg_cut_rec>> Kernel::cut_connections() {
    if (!cut_link_) return err(cut_note_);
    const int fd = bpf_iter_create(bpf_link__fd(cut_link_.get()));
    if (fd < 0) return err(fmt::format("start the TCP socket iterator: {}", errstr(errno)));
    std::string out;
    char buf[16384];
    for (;;) {
        const ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            out.append(buf, std::size_t(n));
            continue;
        }
        // EAGAIN: the kernel stops a read after a million sockets without
        // output; the next read goes on from there.
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        const int e = n < 0 ? errno : 0;
        close(fd);
        // The sockets destroyed so far stay destroyed; say so with the error.
        if (e) return err(fmt::format("run the TCP socket iterator: {}", errstr(e)));
        break;
    }
    std::vector<jg_cut_rec> recs(out.size() / sizeof(jg_cut_rec));
    if (!recs.empty()) std::memcpy(recs.data(), out.data(), recs.size() * sizeof(jg_cut_rec));
    return recs;
}

Counters Kernel::counters() const {
    Counters c;
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return c;
    std::vector<std::uint64_t> vals(static_cast<std::size_t>(ncpu));
    for (std::uint32_t i = 0; i < JG_CNT_MAX; ++i) {
        if (bpf_map_lookup_elem(counters_fd_, &i, vals.data()) != 0) continue;
        for (auto v : vals) c.v[i] += v;
    }
    return c;
}

namespace {

// The kernel's id of a BPF object (link or map) behind fd, 0 if unknown.
std::uint32_t obj_id(int fd) {
    bpf_link_info info{};  // the id is the first field of link, map and prog info alike
    std::uint32_t len = sizeof(info);
    return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

// Whether `pin` names the object with id `id`; false when missing or another.
bool pin_holds(const std::string& pin, std::uint32_t id) {
    const int fd = bpf_obj_get(pin.c_str());
    if (fd < 0) return false;
    const bool same = obj_id(fd) == id;
    close(fd);
    return same;
}

// Makes `pin` name the object behind fd (removing a missing or foreign pin
// first): "" when it already did, else what was repaired or why it failed.
std::string repin(const std::string& pin, int fd) {
    const std::uint32_t id = obj_id(fd);
    if (id && pin_holds(pin, id)) return "";
    const bool existed = access(pin.c_str(), F_OK) == 0;
    if (existed) unlink(pin.c_str());
    if (bpf_obj_pin(fd, pin.c_str()) != 0)
        return fmt::format("its pin {} was {} and could not be made again: {}", pin,
                           existed ? "replaced" : "removed", errstr(errno));
    return fmt::format("its pin {} was {}; pinned again", pin,
                       existed ? "replaced by another object" : "removed");
}

}  // namespace

std::vector<Repair> Kernel::repair(bool pins) {
    std::vector<Repair> out;
    int cg = -1;
    const std::vector<LinkStatus> now = links();
    for (std::size_t i = 0; i < links_.size() && i < std::size(kHooks); ++i) {
        auto& [name, link] = links_[i];
        const std::string pin = link_pin(pin_dir_, name.c_str());
        if (!now[i].attached) {
            // Detached by someone else (bpftool link detach): a new link,
            // pinned where the old one was.  Nothing enforced the hook meanwhile.
            if (cg < 0) cg = ::open(cgroup_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            Link fresh(cg < 0 ? nullptr : bpf_program__attach_cgroup(kHooks[i].prog(skel_), cg));
            if (!fresh) {
                out.push_back({name,
                               fmt::format("the link had been detached and could not be attached again: {}",
                                           errstr(errno)),
                               false});
                continue;
            }
            unlink(pin.c_str());
            link = std::move(fresh);
            const bool pinned = bpf_obj_pin(bpf_link__fd(link.get()), pin.c_str()) == 0;
            out.push_back(
                {name,
                 pinned ? std::string("the link had been detached; attached again")
                        : fmt::format("the link had been detached; attached again, but not pinned ({}): "
                                      "it holds while jitgated runs",
                                      errstr(errno)),
                 true});
            continue;
        }
        if (!pins) continue;
        if (auto why = repin(pin, bpf_link__fd(link.get())); !why.empty()) out.push_back({name, why, true});
    }
    if (cg >= 0) close(cg);
    if (pins)
        for (bpf_map* m : pinned_maps_) {
            const std::string pin = pin_dir_ + "/" + bpf_map__name(m);
            if (auto why = repin(pin, bpf_map__fd(m)); !why.empty())
                out.push_back({bpf_map__name(m), why, true});
        }
    // XDP links detached while their interface stays: sync_xdp attaches anew.
    for (auto& [idx, x] : xdp_)
        if (xdp_link_ifindex(bpf_link__fd(x.link.get()), nullptr) <= 0 &&
            if_nametoindex(x.ifname.c_str()) == static_cast<unsigned>(idx))
            out.push_back({"xdp " + x.ifname, "the XDP link had been detached; attached again", true});
    return out;
}

std::vector<LinkStatus> Kernel::links() const {
    std::vector<LinkStatus> out;
    for (const auto& [name, link] : links_) {
        LinkStatus s;
        s.program = name;
        bpf_link_info info{};
        std::uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(bpf_link__fd(link.get()), &info, &len) == 0) {
            s.link_id = info.id;
            s.attached = info.cgroup.cgroup_id != 0;
        }
        out.push_back(s);
    }
    return out;
}

Result<bool> Kernel::apply_ports(const Policy& p) {
    std::vector<jg_port_val> want(JG_PORT_ENTRIES);
    for (auto& v : want) std::memset(&v, 0, sizeof(v));
    for (const auto& pp : p.ports) {
        std::uint8_t f = JG_PF_PROTECTED | (pp.audit ? JG_PF_AUDIT : 0) | (pp.drain ? JG_PF_DRAIN : 0);
        if (pp.tcp) want[pp.port].tcp = f;
        if (pp.udp) want[pp.port].udp = f;
    }
    for (std::uint32_t port = 0; port < JG_PORT_ENTRIES; ++port) {
        jg_port_val cur{};
        if (ports.lookup(port, cur) == 0 && std::memcmp(&cur, &want[port], sizeof(cur)) == 0) continue;
        if (int e = ports.update(port, want[port]))
            return err(fmt::format("write protected port {}: {}", port, errstr(e)));
    }
    return true;
}

Result<bool> Kernel::apply_service_users(const BindRules& rules) {
    if (const std::size_t n = bind_user_entries(rules); n > JG_BIND_USER_ENTRIES)
        return err(
            fmt::format("service_users name {} (user, port) pairs after groups are expanded, more than "
                        "the {} the kernel map holds: list fewer or smaller groups",
                        n, JG_BIND_USER_ENTRIES));
    const jg_bind_val zero_val = make_bind_val(0, 0);
    std::vector<jg_bind_val> want(JG_PORT_ENTRIES, zero_val);
    std::set<std::tuple<std::uint32_t, std::uint16_t, std::uint8_t>> users;
    for (const auto& [key, rule] : rules) {
        auto& v = want[key.first];
        (key.second == Proto::Tcp ? v.tcp_below : v.udp_below) = rule.below;
        for (auto uid : rule.uids) users.insert({uid, key.first, static_cast<std::uint8_t>(key.second)});
    }
    // New entries first, stale ones last: a service user who stays listed
    // is never refused in between.
    for (const auto& [uid, port, proto] : users)
        if (int e = bind_users.update(make_bind_key(uid, port, Proto(proto)), 1); e == -E2BIG || e == -ENOMEM)
            return err(fmt::format("the service user map is full ({} entries): list fewer users",
                                   JG_BIND_USER_ENTRIES));
        else if (e)
            return err(fmt::format("write service user {} of port {}: {}", uid, port, errstr(e)));
    // Every entry once (a pinned map may hold an earlier run's), then only
    // the ports this call or the last one described: a reload must not
    // delay the cut of a newly protected port by 65536 look-ups.
    std::set<std::uint32_t> ports;
    if (!bind_ports_written_)
        for (std::uint32_t port = 0; port < JG_PORT_ENTRIES; ++port) ports.insert(port);
    else
        ports = *bind_ports_written_;
    for (const auto& [key, rule] : rules) ports.insert(key.first);
    std::set<std::uint32_t> written;
    for (std::uint32_t port : ports) {
        jg_bind_val cur{};
        if (std::memcmp(&want[port], &zero_val, sizeof(zero_val)) != 0) written.insert(port);
        if (bind_ports.lookup(port, cur) == 0 && std::memcmp(&cur, &want[port], sizeof(cur)) == 0) continue;
        if (int e = bind_ports.update(port, want[port])) {
            bind_ports_written_.reset();  // unknown now: look at every entry next time
            return err(fmt::format("write the service users of port {}: {}", port, errstr(e)));
        }
    }
    bind_ports_written_ = std::move(written);
    std::vector<jg_bind_key> stale;
    bind_users.for_each([&](const jg_bind_key& k, std::uint8_t) {
        if (!users.count({k.uid, k.port, k.proto})) stale.push_back(k);
    });
    for (const auto& k : stale) bind_users.remove(k);
    return true;
}

Result<bool> Kernel::set_host_netns(std::uint64_t cookie) {
    jg_config c;
    std::memset(&c, 0, sizeof(c));
    c.host_netns_cookie = cookie;
    if (int e = config.update(0, c)) return err(fmt::format("write jg_config: {}", errstr(e)));
    return true;
}

Result<int> Kernel::uninstall(const std::string& pin_dir) {
    int removed = 0;
    DIR* d = opendir(pin_dir.c_str());
    if (!d) {
        if (errno == ENOENT) return 0;
        return err(fmt::format("open {}: {}", pin_dir, errstr(errno)));
    }
    std::vector<std::string> names;
    while (dirent* e = readdir(d))
        if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.emplace_back(e->d_name);
    closedir(d);
    // Links first: once the last reference to a link goes, its program is
    // detached; maps go after the programs that use them.
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
        bool la = a.rfind("link_", 0) == 0, lb = b.rfind("link_", 0) == 0;
        return la != lb ? la : a < b;
    });
    for (const auto& n : names) {
        std::string path = pin_dir + "/" + n;
        if (n.rfind("link_", 0) == 0) {
            // Detach explicitly too, so a link another process still holds
            // open stops enforcing now.
            int fd = bpf_obj_get(path.c_str());
            if (fd >= 0) {
                bpf_link_detach(fd);
                close(fd);
            }
        }
        if (unlink(path.c_str()) != 0) return err(fmt::format("remove {}: {}", path, errstr(errno)));
        ++removed;
    }
    if (rmdir(pin_dir.c_str()) != 0 && errno != ENOENT)
        return err(fmt::format("remove {}: {}", pin_dir, errstr(errno)));
    return removed;
}

}  // namespace jg
