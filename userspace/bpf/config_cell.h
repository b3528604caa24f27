#pragma once
// Private to userspace/bpf: jg_config has two writers, policy_maps (the host
// network namespace) and grant_maps (the prefix-grant count and the grant
// generation); each changes its own fields and leaves the others as read.
// The daemon is one thread, so read-change-write is not raced by a writer.
#include <cstdint>

#include "bpf/map.h"
#include "jitgate/abi.h"

namespace jg {

// 0 or -errno.
template <typename F>
int update_config(const Map<std::uint32_t, jg_config>& m, F&& change) {
    jg_config c{};
    if (int e = m.lookup(0, c)) return e;
    change(c);
    return m.update(0, c);
}

}  // namespace jg
