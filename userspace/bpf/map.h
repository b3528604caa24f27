#pragma once
// Private to userspace/bpf: a typed, non-owning view of a loaded map (the
// skeleton owns its fd); key and value sizes are checked against the map
// once, when the view is made.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdint>
#include <string>

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

private:
    explicit Map(int fd) : fd_(fd) {}
    int fd_ = -1;
};

}  // namespace jg
