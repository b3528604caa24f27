#include "bpf/skeleton.h"

#include <bpf/btf.h>
#include <fmt/format.h>

#include <cerrno>

#include "bpf/grant_size.h"
#include "bpf/link.h"
#include "util/unique_fd.h"

namespace jg {

namespace {

// Whether the running kernel's BTF has a function (a kfunc) of this name.
bool kernel_has_func(const char* name) {
    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) return false;
    const bool found = btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) >= 0;
    btf__free(vmlinux);
    return found;
}

// A ring pinned by an earlier run is reused as it is; any other size is
// refused by the kernel's pinned-map check, so say which.
Result<bool> check_pinned_ring(const std::string& pin, std::uint32_t ring_bytes) {
    const unique_fd fd(bpf_obj_get(pin.c_str()));
    if (!fd) return true;
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 && info.max_entries != ring_bytes)
        return err(fmt::format(
            "the pinned event ring {} holds {} bytes, not the {} asked for: the size of a pinned "
            "ring cannot change while enforcement stays attached (jitgated --uninstall, then start "
            "again)",
            pin, info.max_entries, ring_bytes));
    return true;
}

// Every map the programs declare pinned by its own name under pin_dir
// (declared here, with the maps, not in a list kept by hand).
Result<bool> set_pin_paths(jitgate_bpf* s, const std::string& pin_dir) {
    bpf_map* m = nullptr;
    bpf_object__for_each_map(m, s->obj) {
        if (!pinned_map(m)) continue;
        const std::string path = map_pin(pin_dir, m);
        if (int e = bpf_map__set_pin_path(m, path.c_str()))
            return err(fmt::format("set pin path {}: {}", path, errstr(e)));
    }
    return true;
}

}  // namespace

bool pinned_map(const bpf_map* m) { return !bpf_map__is_internal(m); }

std::string map_pin(const std::string& pin_dir, const bpf_map* m) { return pin_dir + "/" + bpf_map__name(m); }

Result<Skeleton> load_skeleton(const std::string& pin_dir, std::uint32_t ring_bytes, std::string* cut_note,
                               std::uint32_t max_grants) {
    Skeleton s(jitgate_bpf__open());
    if (!s) return err(fmt::format("open the embedded BPF object: {}", errstr(errno)));
    if (auto r = set_pin_paths(s.get(), pin_dir); !r) return err(r.error());
    if (auto r = check_pinned_ring(map_pin(pin_dir, s->maps.jg_events), ring_bytes); !r)
        return err(r.error());
    if (int e = bpf_map__set_max_entries(s->maps.jg_events, ring_bytes))
        return err(fmt::format("size the event ring to {} bytes: {}", ring_bytes, errstr(e)));
    if (auto r = size_grant_maps(s.get(), max_grants); !r) return err(r.error());
    // Cutting connections needs the bpf_sock_destroy kfunc (Linux 6.5): without
    // it the hooks still refuse every packet, and status says what is missing.
    if (!kernel_has_func("bpf_sock_destroy")) {
        bpf_program__set_autoload(s->progs.jg_cut, false);
        *cut_note =
            "this kernel has no bpf_sock_destroy (Linux 6.5 or later): connections are refused when "
            "their grant ends, not reset";
    }
    if (int e = jitgate_bpf__load(s.get())) {
        // Big grant maps are the likely cause of a kernel out of memory here.
        if (e == -ENOMEM)
            return err(fmt::format(
                "load the BPF programs: the kernel could not allocate the maps (grant maps of {} grants "
                "each): lower [daemon] max_grants or free memory, then start again",
                grant_map_capacity(s.get())));
        return err(fmt::format(
            "load the BPF programs: {} (the kernel needs BPF, BTF, cgroup sock_addr and sk_storage "
            "support; if an older jitgate left incompatible maps in {}, run jitgated --uninstall)",
            errstr(e), pin_dir));
    }
    return s;
}

Result<KernelMaps> KernelMaps::of(jitgate_bpf* s) {
    KernelMaps k;
    std::string bad;
    auto view = [&bad](auto& field, bpf_map* m) {
        auto v = std::decay_t<decltype(field)>::of(m);
        if (v)
            field = *v;
        else if (bad.empty())
            bad = v.error();
    };
    view(k.ports, s->maps.jg_ports);
    view(k.grants_uid, s->maps.jg_grants_uid);
    view(k.grants_addr, s->maps.jg_grants_addr);
    view(k.grants_net, s->maps.jg_grants_net);
    view(k.deny_rl, s->maps.jg_deny_rl);
    view(k.allow_rl, s->maps.jg_allow_rl);
    view(k.local_addrs, s->maps.jg_local_addrs);
    view(k.local_nets, s->maps.jg_local_nets);
    view(k.config, s->maps.jg_config);
    view(k.bind_ports, s->maps.jg_bind_ports);
    view(k.bind_users, s->maps.jg_bind_users);
    if (!bad.empty()) return err(bad);
    k.counters_fd = bpf_map__fd(s->maps.jg_counters);
    k.bloom_fd = bpf_map__fd(s->maps.jg_grants_bloom);
    k.memo_fd = bpf_map__fd(s->maps.jg_deny_memo);
    k.events_fd = bpf_map__fd(s->maps.jg_events);
    k.grant_capacity = grant_map_capacity(s);
    return k;
}

}  // namespace jg
