#pragma once
// Private to userspace/bpf: XDP (the early drop) on the interfaces named,
// one link each, pinned as <pin_dir>/link_xdp_<ifindex>.
#include <map>
#include <string>
#include <vector>

#include "bpf/link.h"
#include "bpf/loader.h"

namespace jg {

class XdpLinks {
public:
    // Keeps enforcing through the XDP links of an earlier run, with `prog`
    // swapped inside; drops pins whose interface went away or that are not ours.
    void adopt(const std::string& pin_dir, bpf_program* prog);
    // Kernel::sync_xdp.
    void sync(bpf_program* prog, const std::vector<std::string>& ifnames);
    std::vector<XdpStatus> status() const;
    // Links detached while their interface stays (sync attaches them anew).
    std::vector<Repair> detached() const;

private:
    struct XdpLink {
        std::string ifname;
        Link link;  // pinned as link_xdp_<ifindex>
        std::string mode, note;
    };
    void drop(int ifindex, bool detach);
    // Attaches prog to one interface: native where the driver can, else generic.
    void attach(int prog_fd, int ifindex, const std::string& name);

    std::string pin_dir_;
    std::map<int, XdpLink> links_;               // by ifindex
    std::map<std::string, std::string> absent_;  // configured, not attached: why
};

}  // namespace jg
