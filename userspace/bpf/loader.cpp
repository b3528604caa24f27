#include "bpf/loader.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "bpf/kernel_parts.h"
#include "util/log.h"
#include "util/unique_fd.h"

namespace jg {

namespace {

bool g_verbose = false;

int libbpf_print(enum libbpf_print_level level, const char* fmt_, va_list ap) {
    if (level == LIBBPF_DEBUG && !g_verbose) return 0;
    char* buf = nullptr;
    int n = vasprintf(&buf, fmt_, ap);
    if (n < 0) return 0;
    std::string s(buf, static_cast<std::size_t>(n));
    free(buf);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    if (!s.empty()) log("libbpf: " + s);
    return n;
}

// The TCP socket iterator that ends connections (not pinned: it runs only
// while a daemon does), or why there is none.
void attach_cutter(Kernel::Parts& p, const std::string& cgroup_dir) {
    if (p.cut_note.empty()) {
        p.cut_link = Link(bpf_program__attach_iter(p.skel->progs.jg_cut, nullptr));
        if (!p.cut_link)
            p.cut_note = fmt::format(
                "the TCP socket iterator could not be attached ({}): connections "
                "are refused when their grant ends, not reset",
                errstr(errno));
    }
    struct stat sb {};
    if (stat(cgroup_dir.c_str(), &sb) == 0) p.skel->bss->jg_cut_cgroup_id = sb.st_ino;
}

}  // namespace

void route_libbpf_log(bool verbose) {
    g_verbose = verbose;
    libbpf_set_print(libbpf_print);
}

Kernel::Kernel(std::unique_ptr<Parts> p) : p_(std::move(p)) {}

Kernel::~Kernel() = default;

Result<std::unique_ptr<Kernel>> Kernel::open(const Options& o,
                                             const std::function<Result<bool>(Kernel&)>& prepare) {
    std::error_code ec;
    std::filesystem::create_directories(o.pin_dir, ec);
    if (ec) return err(fmt::format("create pin directory {}: {}", o.pin_dir, ec.message()));
    auto parts = std::make_unique<Parts>();
    auto skel = load_skeleton(o.pin_dir, o.ring_bytes, &parts->cut_note, o.max_grants);
    if (!skel) return err(skel.error());
    parts->skel = std::move(*skel);
    auto maps = KernelMaps::of(parts->skel.get());
    if (!maps) return err(maps.error());
    parts->maps = *maps;
    parts->bloom.attach(parts->maps.bloom_fd, parts->maps.grant_capacity);
    if (auto why = parts->memo.attach(parts->maps.memo_fd); !why.empty()) return err(why);
    parts->pin_dir = o.pin_dir;
    attach_cutter(*parts, o.cgroup_dir);
    std::unique_ptr<Kernel> k(new Kernel(std::move(parts)));

    if (prepare) {
        if (auto r = prepare(*k); !r) return err(r.error());
    }
    Parts& p = *k->p_;
    if (auto r = p.cgroup.attach(p.skel.get(), o.cgroup_dir, o.pin_dir); !r) return err(r.error());
    // XDP links of an earlier run: keep enforcing with the new program; the
    // daemon's sync_xdp then decides which interfaces keep one.
    p.xdp.adopt(o.pin_dir, p.skel->progs.jg_xdp);
    return k;
}

GrantMaps Kernel::grants() const { return GrantMaps(p_->maps, p_->bloom); }
DenyWindows Kernel::windows() const { return DenyWindows(p_->maps, p_->memo); }
LocalAddrs Kernel::local_addrs() const { return LocalAddrs(p_->maps); }
std::uint32_t Kernel::grant_capacity() const { return p_->maps.grant_capacity; }
int Kernel::events_map_fd() const { return p_->maps.events_fd; }
bool Kernel::can_cut() const { return bool(p_->cut_link); }
const std::string& Kernel::cut_note() const { return p_->cut_note; }
std::vector<LinkStatus> Kernel::links() const { return p_->cgroup.status(); }
const std::vector<std::string>& Kernel::reattached() const { return p_->cgroup.reattached(); }
void Kernel::sync_xdp(const std::vector<std::string>& ifnames) {
    p_->xdp.sync(p_->skel->progs.jg_xdp, ifnames);
}
std::vector<XdpStatus> Kernel::xdp() const { return p_->xdp.status(); }

std::vector<Repair> Kernel::repair(bool pins) {
    std::vector<Repair> out = p_->cgroup.repair(p_->skel.get(), pins);
    if (pins) {
        bpf_map* m = nullptr;
        bpf_object__for_each_map(m, p_->skel->obj) {
            if (!pinned_map(m)) continue;
            if (auto why = repin(map_pin(p_->pin_dir, m), bpf_map__fd(m)); !why.empty())
                out.push_back({bpf_map__name(m), why, true});
        }
    }
    // XDP links detached while their interface stays: sync_xdp attaches anew.
    for (auto& r : p_->xdp.detached()) out.push_back(std::move(r));
    return out;
}

Result<std::vector<jg_cut_rec>> Kernel::cut_connections() {
    if (!p_->cut_link) return err(p_->cut_note);
    const unique_fd fd(bpf_iter_create(p_->cut_link.fd()));
    if (!fd) return err(fmt::format("start the TCP socket iterator: {}", errstr(errno)));
    std::string out;
    char buf[16384];
    for (;;) {
        const ssize_t n = read(fd.get(), buf, sizeof(buf));
        if (n > 0) {
            out.append(buf, std::size_t(n));
            continue;
        }
        // EAGAIN: the kernel stops a read after a million sockets without
        // output; the next read goes on from there.
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        // The sockets destroyed so far stay destroyed; say so with the error.
        if (n < 0) return err(fmt::format("run the TCP socket iterator: {}", errstr(errno)));
        break;
    }
    std::vector<jg_cut_rec> recs(out.size() / sizeof(jg_cut_rec));
    if (!recs.empty()) std::memcpy(recs.data(), out.data(), recs.size() * sizeof(jg_cut_rec));
    return recs;
}

Counters Kernel::counters() const {
    Counters c;
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return c;
    std::vector<std::uint64_t> vals(static_cast<std::size_t>(ncpu));
    for (std::uint32_t i = 0; i < JG_CNT_MAX; ++i) {
        if (bpf_map_lookup_elem(p_->maps.counters_fd, &i, vals.data()) != 0) continue;
        for (auto v : vals) c.v[i] += v;
    }
    return c;
}

Result<int> Kernel::uninstall(const std::string& pin_dir) {
    int removed = 0;
    DIR* d = opendir(pin_dir.c_str());
    if (!d) {
        if (errno == ENOENT) return 0;
        return err(fmt::format("open {}: {}", pin_dir, errstr(errno)));
    }
    std::vector<std::string> names;
    while (dirent* e = readdir(d))
        if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.emplace_back(e->d_name);
    closedir(d);
    // Links first: once the last reference to a link goes, its program is
    // detached; maps go after the programs that use them.
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
        bool la = a.rfind("link_", 0) == 0, lb = b.rfind("link_", 0) == 0;
        return la != lb ? la : a < b;
    });
    for (const auto& n : names) {
        std::string path = pin_dir + "/" + n;
        // Detach a link explicitly too, so that one another process still
        // holds open stops enforcing now.
        if (n.rfind("link_", 0) == 0)
            if (const unique_fd fd(bpf_obj_get(path.c_str())); fd) bpf_link_detach(fd.get());
        if (unlink(path.c_str()) != 0) return err(fmt::format("remove {}: {}", path, errstr(errno)));
        ++removed;
    }
    if (rmdir(pin_dir.c_str()) != 0 && errno != ENOENT)
        return err(fmt::format("remove {}: {}", pin_dir, errstr(errno)));
    return removed;
}

}  // namespace jg
