#pragma once
// Private to userspace/bpf: what a Kernel owns.  Members are destroyed in
// reverse order: the links go before the skeleton whose programs they hold.
#include <optional>
#include <set>
#include <string>

#include "bpf/cgroup_links.h"
#include "bpf/deny_memo.h"
#include "bpf/grant_bloom.h"
#include "bpf/link.h"
#include "bpf/loader.h"
#include "bpf/skeleton.h"
#include "bpf/xdp_links.h"

namespace jg {

struct Kernel::Parts {
    Skeleton skel;
    KernelMaps maps;
    GrantBloom bloom;  // in front of jg_grants_addr; its state is the daemon's
    DenyMemo memo;     // jg_deny_memo, mapped
    std::string pin_dir;
    CgroupLinks cgroup;    // pinned: they stay attached when the daemon stops
    XdpLinks xdp;          // pinned too
    Link cut_link;         // iter/tcp, not pinned: it runs only while a daemon does
    std::string cut_note;  // why connections are not cut, if they are not
    // Ports whose jg_bind_ports entry apply_service_users made non-zero;
    // unset until it has looked at every entry once.
    std::optional<std::set<std::uint32_t>> bind_ports_written;
};

}  // namespace jg
