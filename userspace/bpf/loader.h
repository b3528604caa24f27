#pragma once
// The kernel side of jitgated: the embedded skeleton, its pinned maps and
// its pinned bpf_links.  One RAII owner per kernel object; links are
// destroyed before the skeleton.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/keys.h"
#include "core/policy.h"
#include "core/result.h"
#include "core/service_users.h"
#include "jitgate/abi.h"

struct jitgate_bpf;

namespace jg {

// Sends libbpf's own messages to `sink` (warnings always, debug if verbose).
void route_libbpf_log(std::function<void(const std::string&)> sink, bool verbose);

// A bpf_link and nothing else.
class Link {
public:
    Link() = default;
    explicit Link(bpf_link* l) : l_(l) {}
    Link(Link&& o) noexcept : l_(o.l_) { o.l_ = nullptr; }
    Link& operator=(Link&& o) noexcept {
        if (this != &o) {
            reset();
            l_ = o.l_;
            o.l_ = nullptr;
        }
        return *this;
    }
    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;
    ~Link() { reset(); }
    void reset() {
        if (l_) bpf_link__destroy(l_);
        l_ = nullptr;
    }
    bpf_link* get() const { return l_; }
    explicit operator bool() const { return l_ != nullptr; }

private:
    bpf_link* l_ = nullptr;
};

// A typed, non-owning view of a loaded map; key and value sizes are checked
// against the map once, when the view is made.
template <typename K, typename V>
class Map {
public:
    using key_type = K;
    static Result<Map> of(bpf_map* m) {
        if (bpf_map__key_size(m) != sizeof(K) || bpf_map__value_size(m) != sizeof(V))
            return err(std::string("map ") + bpf_map__name(m) +
                       " does not have the layout this build expects");
        return Map(bpf_map__fd(m));
    }
    Map() = default;
    int fd() const { return fd_; }
    // 0 or -errno.
    int update(const K& k, const V& v, std::uint64_t flags = BPF_ANY) const {
        return bpf_map_update_elem(fd_, &k, &v, flags) ? -errno : 0;
    }
    int lookup(const K& k, V& v) const { return bpf_map_lookup_elem(fd_, &k, &v) ? -errno : 0; }
    int remove(const K& k) const { return bpf_map_delete_elem(fd_, &k) ? -errno : 0; }
    // Reads and deletes k in one step (a rate-limit window the daemon closes): 0 or -errno.
    int take(const K& k, V& v) const { return bpf_map_lookup_and_delete_elem(fd_, &k, &v) ? -errno : 0; }
    // Visits every key (snapshot semantics of get_next_key).
    template <typename F>
    void for_each(F&& f) const {
        K key{}, next{};
        const K* cur = nullptr;
        while (bpf_map_get_next_key(fd_, cur, &next) == 0) {
            V v{};
            if (bpf_map_lookup_elem(fd_, &next, &v) == 0) f(next, v);
            key = next;
            cur = &key;
        }
    }

private:
    explicit Map(int fd) : fd_(fd) {}
    int fd_ = -1;
};

struct LinkStatus {
    std::string program;
    std::uint32_t link_id = 0;
    bool attached = false;
};

// XDP on one interface, as `jitgate status` shows it.
struct XdpStatus {
    std::string ifname;
    int ifindex = 0;   // 0: the interface does not exist (yet)
    std::string mode;  // "native", "generic", or "" when not attached
    std::uint32_t link_id = 0;
    bool attached = false;
    std::string note;  // why not native, or why not attached
};

// What Kernel::repair() found and did about one link or pin.
struct Repair {
    std::string object;  // a hook ("jg_connect4"), a map, or "xdp IFACE"
    std::string what;
    bool fixed = true;
};

struct Counters {
    std::array<std::uint64_t, JG_CNT_MAX> v{};
};

class Kernel {
public:
    struct Options {
        std::string cgroup_dir;
        std::string pin_dir;  // <bpffs>/v<ABI>
        // Size of the event ring (a power of two, at least one page); a
        // pinned ring keeps the size it was made with.
        std::uint32_t ring_bytes = JG_RINGBUF_BYTES;
    };
    // Loads the programs (reusing pinned maps), then for each hook either
    // swaps the program inside its pinned link (no moment without
    // enforcement) or attaches a new link to the cgroup and pins it.
    // `prepare` runs after load and before any attachment, to fill the maps.
    static Result<std::unique_ptr<Kernel>> open(const Options& o,
                                                const std::function<Result<bool>(Kernel&)>& prepare);
    // Unpins every link and map under pin_dir (which detaches the programs
    // once nothing else holds the links) and removes the directory.
    static Result<int> uninstall(const std::string& pin_dir);

    ~Kernel();
    Kernel(const Kernel&) = delete;
    Kernel& operator=(const Kernel&) = delete;

    Map<std::uint32_t, jg_port_val> ports;
    Map<jg_uid_key, jg_grant_val> grants_uid;
    Map<jg_addr_key, jg_grant_val> grants_addr;
    Map<jg_net_key, jg_grant_val> grants_net;
    Map<jg_rl_key, jg_rl_val> deny_rl;
    Map<jg_allow_key, jg_rl_val> allow_rl;
    Map<jg_addr, std::uint8_t> local_addrs;
    Map<jg_local_net_key, std::uint8_t> local_nets;
    Map<std::uint32_t, jg_config> config;
    Map<std::uint32_t, jg_bind_val> bind_ports;
    Map<jg_bind_key, std::uint8_t> bind_users;

    int events_map_fd() const;
    // Destroys the TCP connections that no grant covers any more on ports
    // whose grants end by cutting (bpf/jg_iter.bpf.c) and says which; an
    // error when this kernel cannot (cut_note()).
    Result<std::vector<jg_cut_rec>> cut_connections();
    bool can_cut() const { return bool(cut_link_); }
    const std::string& cut_note() const { return cut_note_; }
    Counters counters() const;
    std::vector<LinkStatus> links() const;

    // Makes XDP run on exactly the interfaces named (those that exist now;
    // call again when interfaces appear or go): attaches native where the
    // driver supports it and generic otherwise, swaps the program inside a
    // link pinned by an earlier run, and detaches from interfaces no longer
    // named.  Failures are per interface, in the status: XDP is the early
    // drop, cgroup_skb/ingress enforces without it.
    void sync_xdp(const std::vector<std::string>& ifnames);
    std::vector<XdpStatus> xdp() const;
    // Hooks whose pinned link had been detached by someone else and that
    // open() attached anew.
    const std::vector<std::string>& reattached() const { return reattached_; }
    // Checks that every cgroup link is really attached (not merely pinned)
    // and that every link and map pin names our object: a detached link is
    // attached anew, a missing or foreign pin made again; an XDP link found
    // detached is reported (sync_xdp then attaches it again).  Pins only
    // when `pins` (a detached link is re-pinned either way).  What it did.
    std::vector<Repair> repair(bool pins = true);

    // Makes jg_ports say exactly what the policy says.
    Result<bool> apply_ports(const Policy& p);
    // Makes jg_bind_ports and jg_bind_users say exactly who may bind each
    // protected port; an error (nothing removed) when they would not fit.
    Result<bool> apply_service_users(const BindRules& rules);
    Result<bool> set_host_netns(std::uint64_t cookie);

private:
    Kernel() = default;
    jitgate_bpf* skel_ = nullptr;
    struct XdpLink {
        std::string ifname;
        Link link;  // pinned as link_xdp_<ifindex>
        std::string mode, note;
    };
    void drop_xdp(int ifindex, bool detach);

    std::vector<std::pair<std::string, Link>> links_;
    std::string pin_dir_;
    std::vector<std::string> reattached_;
    std::map<int, XdpLink> xdp_;                     // by ifindex
    std::map<std::string, std::string> xdp_absent_;  // configured, not attached: why
    int counters_fd_ = -1;
    std::string cgroup_dir_;
    std::vector<bpf_map*> pinned_maps_;
    // Ports whose jg_bind_ports entry apply_service_users made non-zero;
    // unset until it has looked at every entry once.
    std::optional<std::set<std::uint32_t>> bind_ports_written_;
    Link cut_link_;         // iter/tcp, not pinned
    std::string cut_note_;  // why connections are not cut, if they are not
};

}  // namespace jg
