#include "daemon/startup.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bpf/loader.h"
#include "daemon/audit_log.h"
#include "daemon/system.h"
#include "jitgate/abi.h"
#include "util/log.h"

namespace jg {

std::string pin_dir_of(const std::string& bpffs) { return fmt::format("{}/v{}", bpffs, JG_ABI_VERSION); }

std::vector<std::string> other_abi_dirs(const std::string& bpffs) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(bpffs, ec)) {
        const std::string n = e.path().filename().string();
        if (n.size() < 2 || n[0] != 'v' || n.find_first_not_of("0123456789", 1) != std::string::npos)
            continue;
        if (e.path().string() != pin_dir_of(bpffs)) out.push_back(e.path().string());
    }
    return out;
}

void apply_daemon_settings(DaemonOptions& o, const DaemonSettings& d) {
    // A flag given wins, even one that names the default; then the key.
    auto pick = [&o](const char* flag, std::string& value, const std::optional<std::string>& cfg) {
        if (!o.given.count(flag) && cfg) value = *cfg;
    };
    pick("--cgroup", o.cgroup, d.cgroup);
    pick("--bpffs", o.bpffs, d.bpffs);
    pick("--socket", o.socket, d.socket);
    pick("--state-dir", o.state_dir, d.state_dir);
    pick("--audit-log", o.audit_log, d.audit_log);
    pick("--metrics-address", o.metrics_address, d.metrics_address);
}

std::optional<std::string> start_refusal() {
    if (geteuid() != 0)
        return "must run as root (it loads BPF programs and attaches them to a cgroup); run it with sudo or "
               "as "
               "the jitgated systemd service";
    return time_namespace_refusal();
}

Result<std::shared_ptr<const Policy>> load_start_policy(const std::string& config) {
    auto load = load_policy_file(config);
    if (!load.ok()) {
        for (auto& e : load.errors) fmt::print(stderr, "{}\n", e);
        return err(
            fmt::format("the policy {} is invalid: fix the lines above (check with: jitgate policy check {})",
                        config, config));
    }
    return std::make_shared<const Policy>(std::move(load.policy));
}

Result<std::string> prepare_dirs(const DaemonOptions& o) {
    if (auto r = make_dir(o.state_dir, 0700); !r) return err(r.error());
    const auto sock_dir = std::filesystem::absolute(o.socket).parent_path().string();
    if (auto r = make_dir(sock_dir, 0755); !r) return err(r.error());
    // Whoever may write the socket's directory may put their own socket in
    // its place and collect approvals meant for this daemon.
    if (struct stat st{}; stat(sock_dir.c_str(), &st) == 0 && (st.st_uid != 0 || (st.st_mode & 022) != 0))
        return err(
            fmt::format("the control socket's directory {} must be owned by root and writable by root "
                        "only (it is owned by uid {}, mode {:o}): another user could put their own "
                        "socket in its place; use a directory such as /run/jitgate (--socket PATH)",
                        sock_dir, st.st_uid, st.st_mode & 07777));
    // The same for the state and the audit log: another user could replace
    // the store, the chain head or the log, or name mounts for --uninstall.
    const auto audit_dir = std::filesystem::absolute(o.audit_log).parent_path().string();
    if (auto r = make_dir(audit_dir, 0750); !r) return err(r.error());
    if (auto why = dir_not_root_only(o.state_dir, "state directory", "/var/lib/jitgate (--state-dir DIR)"))
        return err(*why);
    if (auto why =
            dir_not_root_only(audit_dir, "audit log's directory", "/var/log/jitgate (--audit-log FILE)"))
        return err(*why);
    return audit_dir;
}

sigset_t block_signals() {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);
    return mask;
}

void raise_fd_limit() {
    rlimit nofile{};
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 4096) {
        nofile.rlim_cur = std::min<rlim_t>(4096, nofile.rlim_max);
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
}

void record_start(AuditLog& audit, const std::string& cgroup, std::size_t ports, const std::string& config) {
    audit.emit({{"type", "daemon_start"},
                {"uid", 0},
                {"pid", getpid()},
                {"cgroup", cgroup},
                {"ports", ports},
                {"reason", fmt::format("policy {}", config)}});
    const auto [first, last] = audit.unwritten();
    if (!first) return;
    const bool one = first == last;
    audit.emit(
        {{"type", "events_lost"},
         {"count", last - first + 1},
         {"reason", fmt::format("jitgated was stopped after sealing audit {} and before writing {} (or, "
                                "after such a stop, {} removed); the chain goes on from the record "
                                "before {}",
                                one ? fmt::format("record seq {}", first)
                                    : fmt::format("records seq {}-{}", first, last),
                                one ? "it" : "them", one ? "it was" : "they were", one ? "it" : "them")}});
}

void remove_other_abis(const std::string& bpffs, AuditLog& audit) {
    // XDP is the early drop only: its old links go before sync_xdp attaches
    // ours on the same interfaces.
    for (const auto& dir : other_abi_dirs(bpffs)) {
        auto removed = Kernel::uninstall(dir);
        const std::string why =
            removed ? fmt::format(
                          "links and maps of another ABI version removed after ours were attached: {} "
                          "pinned objects under {}; grants carried over from the state store",
                          *removed, dir)
                    : fmt::format("links and maps of another ABI version under {} could not be removed: {}",
                                  dir, removed.error());
        log(why);
        audit.emit({{"type", "daemon_start"}, {"uid", 0}, {"pid", getpid()}, {"reason", "upgrade: " + why}});
    }
}

BindRules service_rules(const Policy& p) {
    HostAccounts db;
    return resolve_service_users(p, read_uid_min(), db);
}

void warn_ephemeral(const Policy& p) {
    std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
    int lo = 0, hi = 0;
    if (!(range >> lo >> hi)) return;
    std::ifstream reserved_f("/proc/sys/net/ipv4/ip_local_reserved_ports");
    std::string reserved;
    std::getline(reserved_f, reserved);
    auto is_reserved = [&](int port) {
        std::stringstream ss(reserved);
        std::string item;
        while (std::getline(ss, item, ',')) {  // "8080" or "9000-9010"
            int a = 0, b = 0;
            const int n = std::sscanf(item.c_str(), "%d-%d", &a, &b);
            if (n == 1) b = a;
            if (n >= 1 && a <= port && port <= b) return true;
        }
        return false;
    };
    for (const auto& pp : p.ports)
        if (pp.port >= lo && pp.port <= hi && !is_reserved(pp.port))
            log(fmt::format(
                "warning: protected port {} is inside the ephemeral port range {}-{}: a connection this "
                "host makes could get it as its local port and then have its replies refused; reserve "
                "it (sysctl -w net.ipv4.ip_local_reserved_ports={}) or protect a port outside the range",
                pp.port, lo, hi, pp.port));
}

void warn_impostors(const Policy& p, const BindRules& rules) {
    HostAccounts db;
    for (const auto& w : impostor_warnings(p, rules, read_listeners(), db)) log("warning: " + w);
}

void warn_unknown_principals(const Policy& p) {
    for (const auto& w : unknown_principals(p, host_knows)) log("warning: " + w);
}

std::string max_grants_note(std::uint32_t capacity, std::uint32_t max_grants) {
    if (capacity == max_grants) return {};
    return fmt::format(
        "the grant maps hold {} grants each, not the {} of [daemon] max_grants: they keep the size they were "
        "pinned with, and a max_grants change takes effect after jitgated --uninstall and a new start (or a "
        "reboot)",
        capacity, max_grants);
}

void log_xdp(const std::vector<XdpStatus>& xdp) {
    for (auto& x : xdp)
        log(x.attached
                ? fmt::format("XDP on {} ({}{})", x.ifname, x.mode, x.note.empty() ? "" : "; " + x.note)
                : fmt::format("XDP not on {}: {}", x.ifname, x.note));
}

}  // namespace jg
