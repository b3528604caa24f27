#include "bpf/grant_maps.h"

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "bpf/config_cell.h"
#include "bpf/grant_bloom.h"
#include "bpf/skeleton.h"

namespace jg {

namespace {

// The typed map a key of this type lives in.
const Map<jg_uid_key, jg_grant_val>& map_of(const KernelMaps& m, const jg_uid_key&) { return m.grants_uid; }
const Map<jg_addr_key, jg_grant_val>& map_of(const KernelMaps& m, const jg_addr_key&) {
    return m.grants_addr;
}
const Map<jg_net_key, jg_grant_val>& map_of(const KernelMaps& m, const jg_net_key&) { return m.grants_net; }

void next_generation(const KernelMaps& m);

// Removes the entries of `map` that `foreign(key, grant id)` says no active
// grant accounts for; a cached admission under one ends with it.
template <typename K, typename Foreign>
void prune(const KernelMaps& m, const Map<K, jg_grant_val>& map, const Foreign& foreign,
           std::vector<ForeignGrant>& removed) {
    std::vector<std::pair<K, jg_grant_val>> unknown;
    map.for_each([&](const K& key, const jg_grant_val& v) {
        if (foreign(GrantKey{key}, v.grant_id)) unknown.emplace_back(key, v);
    });
    for (const auto& [key, v] : unknown) {
        map.remove(key);
        next_generation(m);
        removed.push_back({principal_of(key), key.port, Proto(key.proto), v.grant_id});
    }
}

template <typename Foreign>
void prune_all(const KernelMaps& m, const Foreign& foreign, std::vector<ForeignGrant>& removed) {
    prune(m, m.grants_uid, foreign, removed);
    prune(m, m.grants_addr, foreign, removed);
    prune(m, m.grants_net, foreign, removed);
}

// Cached admissions (jg_flow_val, jg_sk_state) made before now no longer
// hold: called after every change to a grant map.
void next_generation(const KernelMaps& m) {
    update_config(m.config, [](jg_config& c) { ++c.grant_gen; });
}

// jg_config.net_grants follows jg_grants_net: raised before an entry is
// added (the programs may skip an empty trie, never a full one).
void count_net_grants(const KernelMaps& m, int delta) {
    update_config(m.config, [&](jg_config& c) {
        c.net_grants = delta < 0 && c.net_grants == 0 ? 0 : c.net_grants + std::uint32_t(delta);
    });
}

void recount_net_grants(const KernelMaps& m) {
    std::uint32_t n = 0;
    m.grants_net.for_each([&](const jg_net_key&, const jg_grant_val&) { ++n; });
    update_config(m.config, [&](jg_config& c) { c.net_grants = n; });
}

}  // namespace

std::uint32_t GrantMaps::capacity() const { return m_->grant_capacity; }

// The entry, with what the programs read beside it prepared first: the
// bloom filter learns a host key, the trie's count a new prefix.
Result<bool> GrantMaps::write(const KernelGrant& g) const {
    const auto val = make_grant_val(g.expires_boot_ns, std::uint64_t(g.id));
    const GrantKey key = grant_key(g);
    bool new_net = false;
    if (const auto* k = std::get_if<jg_addr_key>(&key)) bloom_->add(*k);
    if (const auto* k = std::get_if<jg_net_key>(&key)) {
        jg_grant_val old{};
        new_net = m_->grants_net.lookup(*k, old) != 0;
        if (new_net) count_net_grants(*m_, +1);
    }
    const int e = std::visit([&](const auto& k) { return map_of(*m_, k).update(k, val); }, key);
    if (e && new_net) count_net_grants(*m_, -1);
    if (e == -E2BIG || e == -ENOMEM || e == -ENOSPC)
        return err(
            fmt::format("the grant map is full ({} grants); revoke unused grants or raise [daemon] "
                        "max_grants, and try again",
                        capacity()));
    if (e) return err(fmt::format("write grant {} to the kernel: {}", g.id, std::strerror(-e)));
    return true;
}

Result<bool> GrantMaps::put(const KernelGrant& g) const {
    auto r = write(g);
    // A renewal may have shortened the grant under this key.
    next_generation(*m_);
    return r;
}

void GrantMaps::remove(const KernelGrant& g) const {
    const GrantKey key = grant_key(g);
    const bool gone = std::visit(
        [&](const auto& k) {
            jg_grant_val v{};
            return map_of(*m_, k).lookup(k, v) == 0 && v.grant_id == std::uint64_t(g.id) &&
                   map_of(*m_, k).remove(k) == 0;
        },
        key);
    if (!gone) return;
    next_generation(*m_);  // after the removal: a cache refilled before it is void too
    if (std::holds_alternative<jg_addr_key>(key)) bloom_->removed();
    if (std::holds_alternative<jg_net_key>(key)) count_net_grants(*m_, -1);
}

Reconciled GrantMaps::reconcile(const std::vector<KernelGrant>& active,
                                const std::function<void(std::uint64_t)>& progress) const {
    Reconciled out;
    // The maps are rewritten wholesale: the programs ask the hash meanwhile.
    bloom_->withdraw();
    const ActiveGrantKeys known(active);
    // First the entries under keys no active grant has (grants that ended
    // while no daemon ran, a store replaced): they would take the room of
    // active grants in a full map, and removing them opens nothing.  Keys
    // an active grant has are overwritten in place, never removed first
    // (the hashes take that in a full map; the prefix trie only on kernels
    // with "bpf: Handle in-place update for full LPM trie correctly").
    prune_all(
        *m_, [&](const GrantKey& k, std::uint64_t) { return !known.names(k); }, out.removed);
    std::uint64_t n = 0;
    for (const KernelGrant& g : active) {
        if (auto r = write(g); !r) out.errors.push_back(r.error());
        if (progress) progress(++n);
    }
    next_generation(*m_);  // a rewrite may have shortened a grant
    // Then what is left under an active key with another id.
    prune_all(
        *m_, [&](const GrantKey& k, std::uint64_t id) { return !known.holds(k, id); }, out.removed);
    recount_net_grants(*m_);
    if (auto r = rebuild_bloom(); !r) out.errors.push_back(r.error());
    return out;
}

Result<bool> GrantMaps::rebuild_bloom() const {
    std::vector<jg_addr_key> keys;
    if (int e = m_->grants_addr.keys(keys))
        return err(fmt::format("read jg_grants_addr for its bloom filter: {}", std::strerror(-e)));
    return bloom_->rebuild(keys);
}

Result<bool> GrantMaps::refresh_bloom() const {
    if (!bloom_->due(std::chrono::steady_clock::now())) return false;
    return rebuild_bloom();
}

}  // namespace jg
