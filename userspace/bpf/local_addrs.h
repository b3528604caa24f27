#pragma once
// This host's own addresses and the prefixes routed to it (AnyIP, anycast),
// as the programs see them: a connection to one of them is local, never remote.
#include <vector>

#include "core/keys.h"

namespace jg {

struct KernelMaps;

class LocalAddrs {
public:
    explicit LocalAddrs(const KernelMaps& m) : m_(&m) {}
    // Makes jg_local_addrs hold exactly `addrs`; a failed write is logged.
    void sync_addrs(const std::vector<Addr16>& addrs) const;
    // Makes jg_local_nets hold exactly `nets`; a failed write is logged.
    // Give it only a complete route dump: a partial one would drop AnyIP
    // prefixes and let local users reach them as if remote.
    void sync_nets(const std::vector<SourceNet>& nets) const;

private:
    const KernelMaps* m_;
};

}  // namespace jg
