#include "bpf/grant_maps.h"

#include <fmt/format.h>

#include <algorithm>
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

// Map keys have explicit zeroed padding, so equal keys are equal bytes.
template <typename T>
bool same_bytes(const T& a, const T& b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// Removes the entries of `map` whose grant id is not active with this very key.
template <typename K>
void prune(const Map<K, jg_grant_val>& map, const std::vector<std::pair<std::int64_t, GrantKey>>& active,
           std::vector<ForeignGrant>& removed) {
    auto find = [&](std::int64_t id) -> const GrantKey* {
        auto it = std::lower_bound(active.begin(), active.end(), id,
                                   [](const auto& e, std::int64_t v) { return e.first < v; });
        return it == active.end() || it->first != id ? nullptr : &it->second;
    };
    std::vector<std::pair<K, jg_grant_val>> unknown;
    map.for_each([&](const K& key, const jg_grant_val& v) {
        const GrantKey* known = find(std::int64_t(v.grant_id));
        const K* want = known ? std::get_if<K>(known) : nullptr;
        if (!want || !same_bytes(*want, key)) unknown.emplace_back(key, v);
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
    // Each active grant's id and key, sorted by id for prune's look-ups.
    std::vector<std::pair<std::int64_t, GrantKey>> keys;
    keys.reserve(active.size());
    std::uint64_t n = 0;
    for (const KernelGrant& g : active) {
        if (auto r = put(g); !r) out.errors.push_back(r.error());
        keys.emplace_back(g.id, grant_key(g));
        if (progress) progress(++n);
    }
    std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    prune(m_->grants_uid, keys, out.removed);
    prune(m_->grants_addr, keys, out.removed);
    prune(m_->grants_net, keys, out.removed);
    return out;
}

}  // namespace jg
