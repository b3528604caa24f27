#include "daemon/options.h"

#include <string>

#include "core/metrics.h"
#include "core/policy.h"
#include "jitgate/version.h"

namespace jg {

std::unique_ptr<CLI::App> build_daemon_app(DaemonOptions& o, bool& uninstall) {
    auto app =
        std::make_unique<CLI::App>("jitgated: just-in-time access to internal ports, enforced in the kernel");
    app->set_version_flag("--version", "jitgated " JITGATE_VERSION, "print the version and exit");
    app->add_option("--config", o.config, "policy file (TOML)")->capture_default_str();
    app->add_option("--cgroup", o.cgroup, "cgroup v2 directory to attach to (default: the v2 root)");
    app->add_option("--bpffs", o.bpffs, "directory on a bpf filesystem for pins")->capture_default_str();
    app->add_option("--socket", o.socket, "control socket path")->capture_default_str();
    app->add_option("--state-dir", o.state_dir, "state directory (SQLite)")->capture_default_str();
    app->add_option("--audit-log", o.audit_log, "audit log file (JSON Lines)")->capture_default_str();
    app->add_option("--xdp", o.xdp,
                    "interface to run the XDP early drop on (repeatable; default: [daemon] xdp_interfaces)")
        ->type_name("IFACE")
        ->check([](const std::string& n) -> std::string {
            if (!valid_ifname(n)) return "not an interface name";
            if (n == "lo") return "lo carries local traffic only, which the local-user hooks decide";
            return "";
        });
    app->add_option("--ring-buffer-bytes", o.ring_bytes,
                    "size of the kernel's audit event ring: a power of two, 4096 to 1 GiB (a pinned ring "
                    "keeps its size until --uninstall)")
        ->capture_default_str()
        ->check([](const std::string& v) -> std::string {
            unsigned long long n = 0;
            try {
                n = std::stoull(v);
            } catch (...) {
                return "not a number";
            }
            if (n < 4096 || n > (1ull << 30) || (n & (n - 1)))
                return "must be a power of two from 4096 to 1 GiB";
            return "";
        });
    app->add_option("--metrics-address", o.metrics_address,
                    "serve Prometheus metrics over HTTP at GET /metrics on this loopback address, e.g. "
                    "127.0.0.1:9464 (default: [daemon] metrics_address; none)")
        ->type_name("ADDR:PORT")
        ->check([](const std::string& v) -> std::string {
            auto m = parse_metrics_address(v);
            return m ? "" : m.error();
        });
    app->add_option("--etcd", o.etcd,
                    "etcd endpoint of the fleet (repeatable; default: [fleet] etcd; none: a single host)")
        ->type_name("URL")
        ->check([](const std::string& v) -> std::string {
            return v.rfind("http://", 0) == 0 || v.rfind("https://", 0) == 0 ? "" : "not an http(s):// URL";
        });
    app->add_option("--node", o.node, "this node's name in the fleet (default: [fleet] node, the host name)")
        ->type_name("NAME")
        ->check([](const std::string& v) -> std::string {
            return valid_fleet_name(v) ? "" : "1-63 letters, digits, '.', '_' or '-'";
        });
    app->add_option("--label", o.labels,
                    "a label of this node, KEY=VALUE (repeatable; replaces [fleet] labels)")
        ->type_name("KEY=VALUE")
        ->check([](const std::string& v) -> std::string {
            auto s = parse_selector(v);
            return s && s->labels.size() == 1 ? "" : "not KEY=VALUE";
        });
    // design.md §7.3: the node's signing key, without the kernel or etcd.
    app->add_flag("--print-key", o.print_key,
                  "print this node's public key as a [fleet] signers entry, NODE:BASE64 (the key is made in "
                  "the state dir when missing), then exit");
    app->add_flag("--rotate-key", o.rotate_key,
                  "make a next key beside the node's key and print its signers entry, then exit; the "
                  "daemon signs with it once [fleet] signers lists it (at start or reload)");
    app->add_flag("--uninstall", uninstall,
                  "remove programs, links, pins and mounts jitgated made, then exit");
    app->add_flag("-v,--verbose", o.verbose, "libbpf debug output");
    app->add_flag("-q,--quiet", o.quiet, "do not echo audit records on stdout");
    return app;
}

}  // namespace jg
