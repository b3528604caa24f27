#include "bpf/cgroup_links.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>
#include <set>
#include <string>

#include "util/log.h"
#include "util/unique_fd.h"

namespace jg {

namespace {

struct Hook {
    const char* name;
    bpf_program* (*prog)(jitgate_bpf*);
};

const Hook kHooks[] = {
    {"jg_connect4", [](jitgate_bpf* s) { return s->progs.jg_connect4; }},
    {"jg_connect6", [](jitgate_bpf* s) { return s->progs.jg_connect6; }},
    {"jg_sendmsg4", [](jitgate_bpf* s) { return s->progs.jg_sendmsg4; }},
    {"jg_sendmsg6", [](jitgate_bpf* s) { return s->progs.jg_sendmsg6; }},
    {"jg_egress", [](jitgate_bpf* s) { return s->progs.jg_egress; }},
    {"jg_ingress", [](jitgate_bpf* s) { return s->progs.jg_ingress; }},
    {"jg_guard", [](jitgate_bpf* s) { return s->progs.jg_guard; }},
    {"jg_bind4", [](jitgate_bpf* s) { return s->progs.jg_bind4; }},
    {"jg_bind6", [](jitgate_bpf* s) { return s->progs.jg_bind6; }},
};

// Programs renamed since a release pinned their links: {old name, new name}.
// jg_ingress_guard was 16 characters, one more than the kernel keeps.
const std::pair<const char*, const char*> kRenamed[] = {{"jg_ingress_guard", "jg_guard"}};

unique_fd open_cgroup(const std::string& dir) {
    return unique_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

}  // namespace

Result<Link> CgroupLinks::adopt_or_attach(bpf_program* prog, const char* name, int cgroup_fd) {
    const std::string pin = link_pin(pin_dir_, name);
    Link link;
    if (access(pin.c_str(), F_OK) == 0) {
        std::string what;
        if (int e = adopt_pinned(pin, prog, &link, &what)) {
            if (e != -ENOLINK) return err(fmt::format("{} {}: {}", what, pin, errstr(e)));
            // Someone detached the link while its pin stayed: attach
            // anew (nothing enforced this hook meanwhile) and say so.
            unlink(pin.c_str());
            reattached_.emplace_back(name);
        }
    }
    if (link) return link;
    link = Link(bpf_program__attach_cgroup(prog, cgroup_fd));
    if (!link)
        return err(
            fmt::format("attach {} to {}: {}", bpf_program__section_name(prog), cgroup_dir_, errstr(errno)));
    if (int e = bpf_link__pin(link.get(), pin.c_str()))
        return err(fmt::format("pin link {}: {}", pin, errstr(e)));
    return link;
}

Result<bool> CgroupLinks::attach(jitgate_bpf* skel, const std::string& cgroup_dir,
                                 const std::string& pin_dir) {
    cgroup_dir_ = cgroup_dir;
    pin_dir_ = pin_dir;
    const unique_fd cg = open_cgroup(cgroup_dir);
    if (!cg) return err(fmt::format("open cgroup {}: {}", cgroup_dir, errstr(errno)));
    for (const Hook& h : kHooks) {
        auto link = adopt_or_attach(h.prog(skel), h.name, cg.get());
        if (!link) return err(link.error());
        links_.emplace_back(h.name, std::move(*link));
    }
    remove_renamed();
    return true;
}

namespace {

// Whether the link pinned under an old name is the guard an earlier
// version attached: a cgroup ingress link (not one of ours, which the
// daemon just attached) running a program of that name.  Anything else
// pinned there is not detached: whoever can write the pin directory must
// not make the daemon detach another link by naming it so.
bool is_old_guard(int fd, const std::set<std::uint32_t>& ours) {
    bpf_link_info info{};
    std::uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return false;
    if (info.type != BPF_LINK_TYPE_CGROUP || info.cgroup.attach_type != BPF_CGROUP_INET_INGRESS) return false;
    if (ours.count(info.id)) return false;
    const unique_fd prog(bpf_prog_get_fd_by_id(info.prog_id));
    bpf_prog_info pinfo{};
    std::uint32_t plen = sizeof(pinfo);
    if (!prog || bpf_obj_get_info_by_fd(prog.get(), &pinfo, &plen) != 0) return false;
    // The kernel keeps 15 characters of a program's name.
    const std::string name = pinfo.name;
    return name == "jg_ingress_guar" || name == "jg_guard";
}

}  // namespace

void CgroupLinks::remove_renamed() const {
    std::set<std::uint32_t> ours;
    for (const auto& [name, link] : links_) {
        bpf_link_info info{};
        std::uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(link.fd(), &info, &len) == 0) ours.insert(info.id);
    }
    for (const auto& [old_name, new_name] : kRenamed) {
        const std::string pin = link_pin(pin_dir_, old_name);
        if (access(pin.c_str(), F_OK) != 0) continue;
        // Detached explicitly too, in case another process holds it open.
        const unique_fd fd(bpf_obj_get(pin.c_str()));
        const bool guard = fd && is_old_guard(fd.get(), ours);
        if (guard) bpf_link_detach(fd.get());
        if (unlink(pin.c_str()) != 0)
            log(fmt::format("cannot remove {}, the link an earlier version pinned for {}: {}", pin, old_name,
                            errstr(errno)));
        else if (guard)
            log(fmt::format("removed {}, the link an earlier version pinned for {} (now attached as {})", pin,
                            old_name, new_name));
        else
            log(
                fmt::format("removed the pin {} without detaching what it held: it was not the {} link an "
                            "earlier version attached",
                            pin, old_name));
    }
}

std::vector<LinkStatus> CgroupLinks::status() const {
    std::vector<LinkStatus> out;
    for (const auto& [name, link] : links_) {
        LinkStatus s;
        s.program = name;
        bpf_link_info info{};
        std::uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(link.fd(), &info, &len) == 0) {
            s.link_id = info.id;
            s.attached = info.cgroup.cgroup_id != 0;
        }
        out.push_back(s);
    }
    return out;
}

// Detached by someone else (bpftool link detach): a new link, pinned where
// the old one was.  Nothing enforced the hook meanwhile.
Repair CgroupLinks::reattach(jitgate_bpf* skel, std::size_t i, int cgroup_fd) {
    auto& [name, link] = links_[i];
    Link fresh(cgroup_fd < 0 ? nullptr : bpf_program__attach_cgroup(kHooks[i].prog(skel), cgroup_fd));
    if (!fresh)
        return {name,
                fmt::format("the link had been detached and could not be attached again: {}", errstr(errno)),
                false};
    const std::string pin = link_pin(pin_dir_, name.c_str());
    unlink(pin.c_str());
    link = std::move(fresh);
    if (bpf_obj_pin(link.fd(), pin.c_str()) == 0)
        return {name, "the link had been detached; attached again", true};
    return {name,
            fmt::format(
                "the link had been detached; attached again, but not pinned ({}): it holds while jitgated "
                "runs",
                errstr(errno)),
            true};
}

std::vector<Repair> CgroupLinks::repair(jitgate_bpf* skel, bool pins) {
    std::vector<Repair> out;
    unique_fd cg;
    const std::vector<LinkStatus> now = status();
    for (std::size_t i = 0; i < links_.size() && i < std::size(kHooks); ++i) {
        if (!now[i].attached) {
            if (!cg) cg = open_cgroup(cgroup_dir_);
            out.push_back(reattach(skel, i, cg.get()));
            continue;
        }
        if (!pins) continue;
        const auto& [name, link] = links_[i];
        if (auto why = repin(link_pin(pin_dir_, name.c_str()), link.fd()); !why.empty())
            out.push_back({name, why, true});
    }
    return out;
}

}  // namespace jg
