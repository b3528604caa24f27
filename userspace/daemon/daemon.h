#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace jg {

struct DaemonOptions {
    std::string config = "/etc/jitgate/jitgate.toml";
    std::string cgroup;  // empty: the root of the cgroup v2 hierarchy
    std::string bpffs = "/sys/fs/bpf/jitgate";
    std::string socket = "/run/jitgate/jitgate.sock";
    std::string state_dir = "/var/lib/jitgate";
    std::string audit_log = "/var/log/jitgate/audit.jsonl";
    std::uint32_t ring_bytes = 1u << 20;  // the kernel event ring (JG_RINGBUF_BYTES)
    std::vector<std::string> xdp;         // interfaces for XDP; empty: [daemon] xdp_interfaces
    std::string metrics_address;          // HTTP GET /metrics here (loopback); empty: not served
    // Fleet (design.md §7): flags that win over [fleet] etcd, node, labels.
    std::vector<std::string> etcd;
    std::string node;
    std::vector<std::string> labels;  // KEY=VALUE
    bool print_key = false;           // --print-key: print the node key's signers entry, exit
    bool rotate_key = false;          // --rotate-key: make the next key, print its entry, exit
    bool verbose = false;
    bool quiet = false;  // no audit records on stdout
    // Path flags given on the command line ("--socket", ...): they win over
    // [daemon] keys, even when they name the default.
    std::set<std::string> given;
};

// Runs the daemon in the foreground until SIGTERM/SIGINT; returns the exit code.
int run_daemon(const DaemonOptions& o);
// Removes programs, links, pins and the mounts jitgated made.
int uninstall(const DaemonOptions& o);

}  // namespace jg
