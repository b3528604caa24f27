// jitgated --uninstall: removes the programs, links, pins and the mounts
// jitgated made, and refuses while a daemon serves the socket.
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bpf/loader.h"
#include "daemon/daemon.h"
#include "daemon/startup.h"
#include "daemon/system.h"
#include "util/log.h"
#include "util/unique_fd.h"

namespace jg {

namespace {

// Whether a daemon answers at `path` (it would re-create what we remove);
// a socket file nobody serves is removed.
bool daemon_serves(const std::string& path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof(sa.sun_path)) return false;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    const unique_fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd && connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) return true;
    unlink(path.c_str());
    return false;
}

// Unmounts what jitgated recorded mounting under the state directory; how many.
int unmount_recorded(const std::string& state_dir) {
    int unmounted = 0;
    // A state directory another user may write could name any mount point.
    std::vector<std::string> mounts;
    if (auto why = dir_not_root_only(state_dir, "state directory", "/var/lib/jitgate (--state-dir DIR)"))
        log(*why + "; unmounting nothing it records");
    else
        mounts = recorded_mounts(state_dir);
    for (auto& m : mounts) {
        if (umount2(m.c_str(), MNT_DETACH) == 0) {
            ++unmounted;
            if (m.rfind("/run/jitgate/", 0) == 0) rmdir(m.c_str());
        } else if (errno != EINVAL && errno != ENOENT) {
            log(fmt::format("unmount {}: {}", m, std::strerror(errno)));
        }
    }
    forget_mounts(state_dir);
    return unmounted;
}

}  // namespace

int uninstall(const DaemonOptions& opts) {
    if (geteuid() != 0) {
        log("--uninstall must run as root");
        return 1;
    }
    // The same paths as the daemon: flags, then the policy's [daemon] keys
    // when the policy file can be read (a broken policy must not block removal).
    DaemonOptions o = opts;
    if (auto load = load_policy_file(o.config); load.ok()) apply_daemon_settings(o, load.policy.daemon);
    if (daemon_serves(o.socket)) {
        log(fmt::format("jitgated is running (socket {}): stop it first, then uninstall", o.socket));
        return 1;
    }
    auto removed = Kernel::uninstall(pin_dir_of(o.bpffs));
    if (!removed) return log(removed.error()), 1;
    for (const auto& dir : other_abi_dirs(o.bpffs)) {  // an older jitgate's, too
        auto more = Kernel::uninstall(dir);
        if (!more) return log(more.error()), 1;
        *removed += *more;
    }
    rmdir(o.bpffs.c_str());  // only if empty
    const int unmounted = unmount_recorded(o.state_dir);
    log(fmt::format("uninstalled: removed {} pinned objects under {} and {} mounts; kept {} and {}", *removed,
                    pin_dir_of(o.bpffs), unmounted, o.state_dir, o.audit_log));
    return 0;
}

}  // namespace jg
