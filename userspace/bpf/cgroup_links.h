#pragma once
// Private to userspace/bpf: the programs' links on the cgroup, each pinned
// as <pin_dir>/link_<program>: adopted from an earlier run (the program
// swapped inside, no moment without enforcement) or attached anew; checked
// and repaired while the daemon runs.
#include <string>
#include <utility>
#include <vector>

#include "bpf/link.h"
#include "bpf/loader.h"
#include "core/result.h"
#include "jitgate.skel.h"

namespace jg {

class CgroupLinks {
public:
    // Every hook's link, adopted or attached and pinned; then the links an
    // earlier version pinned under a name since changed are removed (after
    // their successor is attached: no moment without enforcement).
    Result<bool> attach(jitgate_bpf* skel, const std::string& cgroup_dir, const std::string& pin_dir);
    std::vector<LinkStatus> status() const;
    // Attaches a detached link anew; re-pins a missing or foreign pin when
    // `pins`.  What it found and did.
    std::vector<Repair> repair(jitgate_bpf* skel, bool pins);
    // Hooks whose pinned link had been detached and that attach() attached anew.
    const std::vector<std::string>& reattached() const { return reattached_; }

private:
    Result<Link> adopt_or_attach(bpf_program* prog, const char* name, int cgroup_fd);
    void remove_renamed() const;
    Repair reattach(jitgate_bpf* skel, std::size_t i, int cgroup_fd);

    std::vector<std::pair<std::string, Link>> links_;  // in the order of the hook table
    std::string cgroup_dir_, pin_dir_;
    std::vector<std::string> reattached_;
};

}  // namespace jg
