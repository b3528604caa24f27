#include "daemon/system.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <linux/magic.h>
#include <pwd.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/clock.h"
#include "core/nss_buffer.h"
#include "core/timens.h"
#include "util/unique_fd.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace jg {

namespace {

bool fs_is(const std::string& path, long magic) {
    struct statfs s {};
    return statfs(path.c_str(), &s) == 0 && static_cast<long>(s.f_type) == magic;
}

std::string mounts_file(const std::string& state_dir) { return state_dir + "/mounts"; }

}  // namespace

namespace {

// Where jitgated mounts (resolve_cgroup, ensure_bpffs): --uninstall unmounts
// a recorded target only when it is one of these and still that filesystem.
const char* const kCgroupMount = "/run/jitgate/cgroup2";
const char* const kBpffsMount = "/sys/fs/bpf";

bool ours(const std::string& target) {
    if (target == kCgroupMount) return fs_is(target, CGROUP2_SUPER_MAGIC);
    if (target == kBpffsMount) return fs_is(target, BPF_FS_MAGIC);
    return false;
}

}  // namespace

void record_mount(const std::string& state_dir, const std::string& target) {
    const unique_fd fd(
        ::open(mounts_file(state_dir).c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return;
    const std::string line = target + "\n";
    if (write(fd.get(), line.data(), line.size()) < 0) {
        // --uninstall then leaves this mount in place, which is safe.
    }
}

std::vector<std::string> recorded_mounts(const std::string& state_dir) {
    std::vector<std::string> out;
    // A file another user wrote (or a link to one) names nothing to unmount.
    const unique_fd fd(::open(mounts_file(state_dir).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return out;
    struct stat st {};
    std::string text;
    if (fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 && (st.st_mode & 022) == 0) {
        char buf[4096];
        for (ssize_t n; (n = read(fd.get(), buf, sizeof(buf))) > 0 && text.size() < 65536;)
            text.append(buf, std::size_t(n));
    }
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (ours(line) && std::find(out.begin(), out.end(), line) == out.end()) out.push_back(line);
    return out;
}

void forget_mounts(const std::string& state_dir) { std::remove(mounts_file(state_dir).c_str()); }

Result<bool> make_dir(const std::string& path, unsigned mode) {
    // Creates the missing components with `mode`; a directory that already
    // exists keeps its owner and mode (never chmod /tmp or /var/log).
    std::filesystem::path p;
    for (const auto& part : std::filesystem::path(path)) {
        p /= part;
        if (mkdir(p.c_str(), mode) == 0) {
            if (chmod(p.c_str(), mode) != 0)  // mkdir's mode is filtered by the umask
                return err(fmt::format("set mode of {}: {}", p.string(), std::strerror(errno)));
        } else if (errno != EEXIST) {
            return err(fmt::format("create directory {}: {}", p.string(), std::strerror(errno)));
        }
    }
    if (!std::filesystem::is_directory(path))
        return err(fmt::format("{} exists and is not a directory", path));
    return true;
}

Result<std::string> resolve_cgroup(const std::string& requested, const std::string& state_dir) {
    if (!requested.empty()) {
        if (!fs_is(requested, CGROUP2_SUPER_MAGIC))
            return err(
                fmt::format("{} is not a cgroup v2 directory: give --cgroup a directory of a "
                            "mounted cgroup2 hierarchy",
                            requested));
        return requested;
    }
    std::ifstream mi("/proc/self/mountinfo");
    for (std::string line; std::getline(mi, line);) {
        // ... mount-point ... - fstype source options
        auto dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream rest(line.substr(dash + 3));
        std::string fstype;
        rest >> fstype;
        if (fstype != "cgroup2") continue;
        std::istringstream head(line.substr(0, dash));
        std::string id, parent, devno, root, mountpoint;
        head >> id >> parent >> devno >> root >> mountpoint;
        if (root == "/") return mountpoint;
    }
    const std::string target = kCgroupMount;
    if (auto r = make_dir(target, 0755); !r) return err(r.error());
    if (mount("cgroup2", target.c_str(), "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
        return err(
            fmt::format("no cgroup v2 hierarchy is mounted and mounting one at {} failed: {} "
                        "(the kernel needs cgroup v2)",
                        target, std::strerror(errno)));
    record_mount(state_dir, target);
    return target;
}

Result<bool> ensure_bpffs(const std::string& dir, const std::string& state_dir) {
    // The nearest existing ancestor tells which filesystem dir will be on.
    std::filesystem::path p = dir;
    while (!p.empty() && !std::filesystem::exists(p)) p = p.parent_path();
    if (fs_is(p.string(), BPF_FS_MAGIC)) return true;
    const std::string base = kBpffsMount;
    if (dir.rfind(base + "/", 0) == 0 && std::filesystem::is_directory(base) && !fs_is(base, BPF_FS_MAGIC)) {
        if (mount("bpf", base.c_str(), "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") != 0)
            return err(fmt::format("mount a bpf filesystem at {}: {}", base, std::strerror(errno)));
        record_mount(state_dir, base);
        return true;
    }
    return err(
        fmt::format("{} is not on a bpf filesystem: mount one (mount -t bpf bpf DIR) and point --bpffs "
                    "inside it",
                    dir));
}

std::string boot_id() {
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string id;
    std::getline(in, id);
    return id;
}

Result<std::uint64_t> current_netns_cookie() {
    const unique_fd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return err(fmt::format("socket: {}", std::strerror(errno)));
    std::uint64_t cookie = 0;
    socklen_t len = sizeof(cookie);
    if (getsockopt(fd.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0)
        return err(fmt::format("read the network namespace cookie: {} (the kernel is too old)",
                               std::strerror(errno)));
    return cookie;
}

std::optional<std::string> SystemDirectory::user_name(std::uint32_t uid) {
    std::vector<char> buf;
    passwd pw{}, *res = nullptr;
    const int rc = nss_lookup(buf, _SC_GETPW_R_SIZE_MAX,
                              [&](char* b, std::size_t n) { return getpwuid_r(uid, &pw, b, n, &res); });
    if (rc == 0 && res) return std::string(pw.pw_name);
    return std::nullopt;
}

std::optional<std::uint32_t> SystemDirectory::uid_of(const std::string& user) {
    std::vector<char> buf;
    passwd pw{}, *res = nullptr;
    const int rc = nss_lookup(buf, _SC_GETPW_R_SIZE_MAX, [&](char* b, std::size_t n) {
        return getpwnam_r(user.c_str(), &pw, b, n, &res);
    });
    if (rc == 0 && res) return pw.pw_uid;
    return std::nullopt;
}

std::optional<bool> SystemDirectory::is_account(std::uint32_t uid, const std::string& user) {
    std::vector<char> buf;
    passwd pw{}, *res = nullptr;
    const int rc = nss_lookup(buf, _SC_GETPW_R_SIZE_MAX,
                              [&](char* b, std::size_t n) { return getpwuid_r(uid, &pw, b, n, &res); });
    // getpwuid_r(3): these mean "not found"; anything else (ERANGE past the
    // largest buffer included), no answer.
    if (rc != 0 && rc != ENOENT && rc != ESRCH && rc != EBADF && rc != EPERM) return std::nullopt;
    if (rc != 0 || !res) return user == std::to_string(uid);
    return user == pw.pw_name;
}

namespace {

std::optional<gid_t> group_id(const std::string& name) {
    std::vector<char> buf;
    struct group gr {
    }, *res = nullptr;
    const int rc = nss_lookup(buf, _SC_GETGR_R_SIZE_MAX, [&](char* b, std::size_t n) {
        return getgrnam_r(name.c_str(), &gr, b, n, &res);
    });
    if (rc == 0 && res) return gr.gr_gid;
    return std::nullopt;
}

std::optional<gid_t> primary_group(std::uint32_t uid) {
    std::vector<char> buf;
    passwd pw{}, *res = nullptr;
    const int rc = nss_lookup(buf, _SC_GETPW_R_SIZE_MAX,
                              [&](char* b, std::size_t n) { return getpwuid_r(uid, &pw, b, n, &res); });
    if (rc == 0 && res) return pw.pw_gid;
    return std::nullopt;
}

// The groups of `user` (primary group `gid`): asked again with the size
// getgrouplist said it needs, a few times (membership can change between
// two calls); empty when it never fits.
std::vector<gid_t> groups_of(const std::string& user, gid_t gid) {
    int n = 64;
    std::vector<gid_t> gids;
    for (int tries = 0; tries < 4; ++tries) {
        gids.resize(static_cast<std::size_t>(std::max(n, 1)));
        n = static_cast<int>(gids.size());
        if (getgrouplist(user.c_str(), gid, gids.data(), &n) >= 0) {
            gids.resize(static_cast<std::size_t>(n));
            return gids;
        }
    }
    return {};
}

}  // namespace

bool SystemDirectory::in_group(std::uint32_t uid, const std::string& user, const std::string& group) {
    const auto want = group_id(group);
    const auto primary = primary_group(uid);
    if (!want || !primary) return false;
    if (*primary == *want) return true;
    const auto gids = groups_of(user, *primary);
    return std::find(gids.begin(), gids.end(), *want) != gids.end();
}

std::optional<std::string> dir_not_root_only(const std::string& dir, const std::string& what,
                                             const std::string& instead) {
    struct stat st {};
    if (stat(dir.c_str(), &st) != 0)
        return fmt::format("cannot check the {} {}: {}", what, dir, std::strerror(errno));
    if (st.st_uid == 0 && (st.st_mode & 022) == 0) return std::nullopt;
    return fmt::format(
        "the {} {} must be owned by root and writable by root only (it is owned by uid {}, "
        "mode {:o}): another user could replace the files jitgated keeps there; use a directory "
        "such as {}",
        what, dir, st.st_uid, st.st_mode & 07777, instead);
}

std::optional<std::string> low_space(const std::vector<std::string>& dirs, std::int64_t min_free_mb) {
    if (min_free_mb <= 0) return std::nullopt;
    for (const auto& d : dirs) {
        struct statvfs v {};
        if (statvfs(d.c_str(), &v) != 0) continue;  // its writes will say what is wrong
        const unsigned long long free_mb = (unsigned long long)v.f_bavail * v.f_frsize >> 20;
        if (free_mb < (unsigned long long)min_free_mb)
            return fmt::format(
                "the filesystem of {} has {} MiB free, less than the {} MiB jitgated keeps to "
                "record decisions ([daemon] min_free_mb), so new requests are refused: ask "
                "an operator to free space there",
                d, free_mb, min_free_mb);
    }
    return std::nullopt;
}

std::optional<std::string> time_namespace_refusal() {
    std::ifstream in("/proc/self/timens_offsets");
    if (!in) return std::nullopt;  // a kernel without time namespaces
    std::stringstream text;
    text << in.rdbuf();
    return timens_refusal(text.str());
}

}  // namespace jg
