#include "bpf/grant_maps.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "bpf/skeleton.h"

namespace jg {

namespace {

// The typed map a key of this type lives in.
const Map<jg_uid_key, jg_grant_val>& map_of(const KernelMaps& m, const jg_uid_key&) { return m.grants_uid; }
const Map<jg_addr_key, jg_grant_val>& map_of(const KernelMaps& m, const jg_addr_key&) {
    return m.grants_addr;
}
const Map<jg_net_key, jg_grant_val>& map_of(const KernelMaps& m, const jg_net_key&) { return m.grants_net; }

// Removes the entries of `map` that are not an active grant's, under that very key.
template <typename K>
void prune(const Map<K, jg_grant_val>& map, const ActiveGrantKeys& known,
           std::vector<ForeignGrant>& removed) {
    std::vector<std::pair<K, jg_grant_val>> unknown;
    map.for_each([&](const K& key, const jg_grant_val& v) {
        if (!known.holds(GrantKey{key}, v.grant_id)) unknown.emplace_back(key, v);
    });
    for (const auto& [key, v] : unknown) {
        map.remove(key);
        removed.push_back({principal_of(key), key.port, Proto(key.proto), v.grant_id});
    }
}

}  // namespace

Result<bool> GrantMaps::put(const KernelGrant& g) const {
    const auto val = make_grant_val(g.expires_boot_ns, std::uint64_t(g.id));
    const int e = std::visit([&](const auto& k) { return map_of(*m_, k).update(k, val); }, grant_key(g));
    if (e == -E2BIG || e == -ENOMEM || e == -ENOSPC)
        return err(fmt::format("the grant map is full ({} grants); revoke unused grants and try again",
                               JG_GRANT_ENTRIES));
    if (e) return err(fmt::format("write grant {} to the kernel: {}", g.id, std::strerror(-e)));
    return true;
}

void GrantMaps::remove(const KernelGrant& g) const {
    std::visit(
        [&](const auto& k) {
            jg_grant_val v{};
            if (map_of(*m_, k).lookup(k, v) == 0 && v.grant_id == std::uint64_t(g.id))
                map_of(*m_, k).remove(k);
        },
        grant_key(g));
}

Reconciled GrantMaps::reconcile(const std::vector<KernelGrant>& active,
                                const std::function<void(std::uint64_t)>& progress) const {
    Reconciled out;
    std::uint64_t n = 0;
    for (const KernelGrant& g : active) {
        if (auto r = put(g); !r) out.errors.push_back(r.error());
        if (progress) progress(++n);
    }
    const ActiveGrantKeys known(active);
    prune(m_->grants_uid, known, out.removed);
    prune(m_->grants_addr, known, out.removed);
    prune(m_->grants_net, known, out.removed);
    return out;
}

}  // namespace jg
