#pragma once
// Private to userspace/bpf: a typed, non-owning view of a loaded map (the
// skeleton owns its fd); key and value sizes are checked against the map
// once, when the view is made.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace jg {

template <typename K, typename V>
class Map {
public:
    using key_type = K;
    static Result<Map> of(bpf_map* m) {
        if (bpf_map__key_size(m) != sizeof(K) || bpf_map__value_size(m) != sizeof(V))
            return err(std::string("map ") + bpf_map__name(m) +
                       " does not have the layout this build expects");
        return Map(bpf_map__fd(m));
    }
    Map() = default;
    // 0 or -errno.
    int update(const K& k, const V& v, std::uint64_t flags = BPF_ANY) const {
        return bpf_map_update_elem(fd_, &k, &v, flags) ? -errno : 0;
    }
    int lookup(const K& k, V& v) const { return bpf_map_lookup_elem(fd_, &k, &v) ? -errno : 0; }
    int remove(const K& k) const { return bpf_map_delete_elem(fd_, &k) ? -errno : 0; }
    // Reads and deletes k in one step (a rate-limit window the daemon closes): 0 or -errno.
    int take(const K& k, V& v) const { return bpf_map_lookup_and_delete_elem(fd_, &k, &v) ? -errno : 0; }
    // Visits every key (snapshot semantics of get_next_key).
    template <typename F>
    void for_each(F&& f) const {
        K key{}, next{};
        const K* cur = nullptr;
        while (bpf_map_get_next_key(fd_, cur, &next) == 0) {
            V v{};
            if (bpf_map_lookup_elem(fd_, &next, &v) == 0) f(next, v);
            key = next;
            cur = &key;
        }
    }

    // Appends every key to `out`, read in batches (a million grants in a
    // few hundred calls, not two million): 0 or -errno.
    int keys(std::vector<K>& out) const {
        constexpr std::uint32_t kChunk = 8192;
        std::vector<K> ks(kChunk);
        std::vector<V> vs(kChunk);
        std::uint64_t cursor = 0, next = 0;
        for (bool first = true;; first = false) {
            std::uint32_t n = kChunk;
            const int r = bpf_map_lookup_batch(fd_, first ? nullptr : &cursor, &next, ks.data(), vs.data(),
                                               &n, nullptr);
            const int e = r ? errno : 0;
            if (r && e != ENOENT) return -e;
            out.insert(out.end(), ks.begin(), ks.begin() + n);
            if (e == ENOENT || n == 0) return 0;  // the last batch, or the map ran out
            cursor = next;
        }
    }

private:
    explicit Map(int fd) : fd_(fd) {}
    int fd_ = -1;
};

}  // namespace jg
