#include "bpf/grant_size.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>

#include "bpf/link.h"
#include "util/unique_fd.h"

namespace jg {

namespace {

std::array<bpf_map*, 3> grant_maps_of(const jitgate_bpf* s) {
    return {s->maps.jg_grants_uid, s->maps.jg_grants_addr, s->maps.jg_grants_net};
}

// max_entries of the map pinned at m's pin path, when one of m's layout is
// there; anything else (nothing, a foreign object) is left to libbpf's own
// check at load.
std::optional<std::uint32_t> pinned_entries(const bpf_map* m) {
    const char* path = bpf_map__pin_path(m);
    if (!path) return std::nullopt;
    const unique_fd fd(bpf_obj_get(path));
    if (!fd) return std::nullopt;
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return std::nullopt;
    if (info.type != bpf_map__type(m) || info.key_size != bpf_map__key_size(m) ||
        info.value_size != bpf_map__value_size(m))
        return std::nullopt;
    return info.max_entries;
}

}  // namespace

Result<bool> size_grant_maps(jitgate_bpf* s, std::uint32_t max_grants) {
    const auto maps = grant_maps_of(s);
    std::array<std::optional<std::uint32_t>, 3> pinned;
    std::optional<std::uint32_t> any_pinned;
    for (std::size_t i = 0; i < maps.size(); ++i) {
        pinned[i] = pinned_entries(maps[i]);
        if (pinned[i] && !any_pinned) any_pinned = pinned[i];
    }
    for (std::size_t i = 0; i < maps.size(); ++i) {
        // A map made anew beside pinned ones takes their size, so the three agree.
        const std::uint32_t n = pinned[i].value_or(any_pinned.value_or(max_grants));
        if (int e = bpf_map__set_max_entries(maps[i], n))
            return err(fmt::format("size {} to {} grants: {}", bpf_map__name(maps[i]), n, errstr(e)));
    }
    return true;
}

std::uint32_t grant_map_capacity(const jitgate_bpf* s) {
    std::uint32_t n = UINT32_MAX;
    for (const bpf_map* m : grant_maps_of(s)) n = std::min(n, bpf_map__max_entries(m));
    return n;
}

}  // namespace jg
