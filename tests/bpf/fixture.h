#pragma once
// What the BPF test runs and the XDP benchmark share: the skip rule for
// privileged suites, loading the skeleton, a private network namespace, one
// test run, reading counters and filling the skeleton's maps through
// core/keys.h (the one place that packs keys).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sched.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "core/keys.h"
#include "jitgate.skel.h"

extern char** environ;

namespace jgtest {

inline bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci && std::string(ci) == "true";
}

// A privileged suite that cannot run says why and exits 77 (skipped), except
// in CI, where a skip is a failure.
inline int skip(const std::string& why) {
    std::printf("%s: %s\n", in_ci() ? "FAIL: a privileged suite cannot be skipped in CI" : "skipped",
                why.c_str());
    return in_ci() ? 1 : 77;
}

// Opens and loads (never attaches) jitgate's skeleton. Root, BTF and the
// rest are checked before: a program the verifier refuses is this build's
// failure, not a missing feature of the machine, so it is said as a failure.
inline jitgate_bpf* load_skeleton() {
    jitgate_bpf* skel = jitgate_bpf__open_and_load();
    if (!skel) std::printf("FAIL: the kernel refused to load jitgate's BPF programs (verifier log above)\n");
    return skel;
}

// One BPF_PROG_TEST_RUN of `frame` through `prog_fd` (with `ctx` as the
// program's context, if given): the program's return value, or -errno when
// the kernel refused the run.
inline long test_run(int prog_fd, const std::vector<std::uint8_t>& frame, __sk_buff* ctx = nullptr) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = std::uint32_t(frame.size()),
                .ctx_in = ctx, .ctx_size_in = ctx ? std::uint32_t(sizeof(*ctx)) : 0U, .repeat = 1);
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) return -errno;
    return opts.retval;
}

// An expiry an hour from now, on the clock the programs compare against.
inline std::uint64_t hour_from_now() { return jg::boottime_ns() + 3600ULL * 1000000000ULL; }

// Runs argv[0] from PATH with no shell; true when it exited 0.
inline bool run_command(std::initializer_list<const char*> args) {
    std::vector<char*> argv;
    for (const char* a : args) argv.push_back(const_cast<char*>(a));
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return false;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Moves this (still single-threaded) process into a network namespace of its
// own, so that nothing a test does reaches the machine's network. Returns an
// empty string, or why it could not.
inline std::string enter_private_netns() {
    if (unshare(CLONE_NEWNET) != 0)
        return std::string("cannot create a private network namespace: ") + std::strerror(errno);
    return {};
}

// The cookie of this process's network namespace (0 if unknown).
inline std::uint64_t own_netns_cookie() {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return 0;
    std::uint64_t cookie = 0;
    socklen_t len = sizeof(cookie);
    if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) cookie = 0;
    close(fd);
    return cookie;
}

inline jg::Addr16 addr(const char* text) {
    auto a = jg::parse_addr(text);
    if (!a) {
        std::fprintf(stderr, "bad test address %s\n", text);
        std::abort();
    }
    return *a;
}

// The host network namespace; the grant fields stay as they are.
inline bool set_config(jitgate_bpf* skel, std::uint64_t host_netns_cookie) {
    std::uint32_t zero = 0;
    jg_config c{};
    const int fd = bpf_map__fd(skel->maps.jg_config);
    if (bpf_map_lookup_elem(fd, &zero, &c) != 0) return false;
    c.host_netns_cookie = host_netns_cookie;
    return bpf_map_update_elem(fd, &zero, &c, BPF_ANY) == 0;
}

// Changes jg_config as the daemon does (read, change, write).
template <typename F>
inline bool change_config(jitgate_bpf* skel, F&& change) {
    std::uint32_t zero = 0;
    jg_config c{};
    const int fd = bpf_map__fd(skel->maps.jg_config);
    if (bpf_map_lookup_elem(fd, &zero, &c) != 0) return false;
    change(c);
    return bpf_map_update_elem(fd, &zero, &c, BPF_ANY) == 0;
}

// What the daemon does after every change to a grant map: cached admissions
// made before no longer hold.
inline bool grants_changed(jitgate_bpf* skel) {
    return change_config(skel, [](jg_config& c) { ++c.grant_gen; });
}

inline bool protect(jitgate_bpf* skel, std::uint16_t port, std::uint8_t tcp_flags, std::uint8_t udp_flags) {
    std::uint32_t k = port;
    jg_port_val v;
    std::memset(&v, 0, sizeof(v));
    v.tcp = tcp_flags;
    v.udp = udp_flags;
    return bpf_map_update_elem(bpf_map__fd(skel->maps.jg_ports), &k, &v, BPF_ANY) == 0;
}

inline bool add_local_addr(jitgate_bpf* skel, const char* text) {
    jg_addr a = jg::make_local_addr(addr(text));
    std::uint8_t one = 1;
    return bpf_map_update_elem(bpf_map__fd(skel->maps.jg_local_addrs), &a, &one, BPF_ANY) == 0;
}

// A remote grant for `source` ("203.0.113.2", "203.0.113.0/24",
// "2001:db8::/48"): a host goes to jg_grants_addr, a network to jg_grants_net
// (counted in jg_config.net_grants first), as the daemon does.  No bloom
// filter is installed here: the programs then ask the hash.
inline bool grant_remote(jitgate_bpf* skel, const char* source, std::uint16_t port, jg::Proto proto,
                         std::uint64_t expires_boot_ns, std::uint64_t grant_id) {
    auto net = jg::parse_source(source);
    if (!net) {
        std::fprintf(stderr, "bad test source %s: %s\n", source, net.error().c_str());
        return false;
    }
    const jg_grant_val v = jg::make_grant_val(expires_boot_ns, grant_id);
    const jg::RemoteKey key = jg::make_remote_key(*net, port, proto);
    const bool host = std::holds_alternative<jg_addr_key>(key);
    bpf_map* map = host ? skel->maps.jg_grants_addr : skel->maps.jg_grants_net;
    if (!host && !change_config(skel, [](jg_config& c) { ++c.net_grants; })) return false;
    return std::visit(
               [&](const auto& k) { return bpf_map_update_elem(bpf_map__fd(map), &k, &v, BPF_ANY) == 0; },
               key) &&
           grants_changed(skel);
}

// One per-CPU counter (JG_CNT_*), summed over CPUs.
inline std::uint64_t counter(jitgate_bpf* skel, std::uint32_t idx) {
    const int n = libbpf_num_possible_cpus();
    std::vector<std::uint64_t> per_cpu(std::size_t(n > 0 ? n : 1));
    if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.jg_counters), &idx, per_cpu.data()) != 0) {
        std::fprintf(stderr, "cannot read counter %u: %s\n", idx, std::strerror(errno));
        std::abort();
    }
    std::uint64_t sum = 0;
    for (auto x : per_cpu) sum += x;
    return sum;
}

// Every CPU's denial memo emptied (jg_deny_memo): a window the memo still
// holds would count a test's denial there, without an event.
inline void clear_memos(jitgate_bpf* skel) {
    const int fd = bpf_map__fd(skel->maps.jg_deny_memo);
    jg_deny_memo zero{};
    for (std::uint32_t i = 0; i < JG_MEMO_SLOTS; ++i) bpf_map_update_elem(fd, &i, &zero, BPF_ANY);
}

// Deletes every entry of a hash, LRU or LPM map.
inline void clear_map(bpf_map* map) {
    const int fd = bpf_map__fd(map);
    std::vector<std::uint8_t> key(bpf_map__key_size(map));
    while (bpf_map_get_next_key(fd, nullptr, key.data()) == 0)
        if (bpf_map_delete_elem(fd, key.data()) != 0) break;
}

}  // namespace jgtest
