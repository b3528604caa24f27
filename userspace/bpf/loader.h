#pragma once
// The kernel side of jitgated: the embedded skeleton, its pinned maps and
// its pinned bpf_links, owned here (one RAII owner per kernel object; links
// are destroyed before the skeleton) and reached only through domain verbs:
// GrantMaps, DenyWindows, LocalAddrs, EventRing (event_ring.h), the links'
// status and repair, XDP, and the policy's maps.  No libbpf type is seen
// by the user of this header.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bpf/deny_windows.h"
#include "bpf/grant_maps.h"
#include "bpf/local_addrs.h"
#include "core/policy.h"
#include "core/result.h"
#include "core/service_users.h"
#include "jitgate/abi.h"

namespace jg {

// Sends libbpf's own messages to jg::log (warnings always, debug if verbose).
void route_libbpf_log(bool verbose);

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
        // Grants each grant map holds ([daemon] max_grants); pinned grant
        // maps keep the size they were made with (grant_capacity() says).
        std::uint32_t max_grants = kDefaultMaxGrants;
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

    GrantMaps grants() const;
    DenyWindows windows() const;
    LocalAddrs local_addrs() const;
    // How many grants each grant map holds: max_grants, or the size of the
    // grant maps an earlier run pinned.
    std::uint32_t grant_capacity() const;
    // The event ring's map, for EventRing::open.
    int events_map_fd() const;

    // Destroys the TCP connections that no grant covers any more on ports
    // whose grants end by cutting (bpf/jg_iter.bpf.c) and says which; an
    // error when this kernel cannot (cut_note()).
    Result<std::vector<jg_cut_rec>> cut_connections();
    bool can_cut() const;
    const std::string& cut_note() const;
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
    const std::vector<std::string>& reattached() const;
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

    // The skeleton, maps and links (bpf/kernel_parts.h, private to userspace/bpf).
    struct Parts;

private:
    explicit Kernel(std::unique_ptr<Parts> p);
    std::unique_ptr<Parts> p_;
};

}  // namespace jg
