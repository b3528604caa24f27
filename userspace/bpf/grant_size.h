#pragma once
// Private to userspace/bpf: the size of the three grant maps, set before the
// object is loaded.  New maps hold [daemon] max_grants; a map pinned by an
// earlier run keeps the size it was made with (the kernel cannot resize a
// map, and libbpf refuses to reuse a pinned map whose max_entries differ
// from the object's), so the object is sized to match it and the daemon
// starts with the pinned grants, still enforced, in place.
#include <cstdint>

#include "core/result.h"
#include "jitgate.skel.h"

namespace jg {

// Call after the pin paths are set and before the object is loaded.
Result<bool> size_grant_maps(jitgate_bpf* s, std::uint32_t max_grants);
// How many grants each grant map of a loaded object holds (the smallest
// of the three, should a pin removed by hand have left them different).
std::uint32_t grant_map_capacity(const jitgate_bpf* s);

}  // namespace jg
