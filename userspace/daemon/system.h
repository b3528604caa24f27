#pragma once
// What jitgated needs from the host: privilege, mounts, identities.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/workflow.h"

namespace jg {

// Mounts jitgated made, recorded under the state dir so --uninstall can
// undo exactly those and nothing else.
void record_mount(const std::string& state_dir, const std::string& target);
std::vector<std::string> recorded_mounts(const std::string& state_dir);
void forget_mounts(const std::string& state_dir);

// The cgroup v2 directory to attach to: `requested` if given (it must be on
// cgroup2), else the root of the mounted v2 hierarchy, mounting one under
// /run/jitgate when there is none.
Result<std::string> resolve_cgroup(const std::string& requested, const std::string& state_dir);
// Makes sure `dir` lies on a bpf filesystem, mounting /sys/fs/bpf when the
// default location has none.
Result<bool> ensure_bpffs(const std::string& dir, const std::string& state_dir);

std::string boot_id();
Result<std::uint64_t> current_netns_cookie();
Result<bool> make_dir(const std::string& path, unsigned mode);

// The refusal for a directory another user could write into or replace
// files in (not owned by root, or writable by group or others), naming it
// as `what` and the flag that moves it; nothing when it is root's alone.
std::optional<std::string> dir_not_root_only(const std::string& dir, const std::string& what,
                                             const std::string& instead);
// Why nothing new can be recorded: the filesystem of one of `dirs` has less
// than `min_free_mb` MiB free (0: never); nothing when there is room.
std::optional<std::string> low_space(const std::vector<std::string>& dirs, std::int64_t min_free_mb);
// The refusal when jitgated runs in a shifted time namespace (core/timens.h).
std::optional<std::string> time_namespace_refusal();

class SystemDirectory : public Directory {
public:
    std::optional<std::string> user_name(std::uint32_t uid) override;
    std::optional<std::uint32_t> uid_of(const std::string& user) override;
    bool in_group(std::uint32_t uid, const std::string& user, const std::string& group) override;
    // Tells "no such account" from a user database that did not answer.
    std::optional<bool> is_account(std::uint32_t uid, const std::string& user) override;
};

}  // namespace jg
