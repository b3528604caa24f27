// Figure 3: what a granted local user's connect() costs with jitgate's
// programs attached (the daemon's six cgroup hooks, its grants loaded, the
// event ring drained as the daemon would), next to the same loop with no
// program and with the equivalent nftables rule set (output hook, a set of
// (protocol, uid, port) with timeouts holding as many grants).  Loops run in
// the private child cgroup given by --cgroup, as the unprivileged user
// nobody, against listeners on loopback in the private network namespace.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "bench.h"
#include "env.h"

namespace jgbench {

namespace {

constexpr const char* kTable = "jgbench_conn";

bool write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path);
    f << text;
    f.flush();
    return bool(f);
}

// This process's cgroup v2 path (relative to the hierarchy's root).
std::string own_cgroup() {
    std::ifstream f("/proc/self/cgroup");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("0::", 0) == 0) return line.substr(3);
    return "/";
}

// The nftables equivalent of jitgate's local-user check, for one port.
std::string nft_ruleset(const Env& env, std::uint32_t n) {
    char path[] = "/tmp/jitgate-bench-conn-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return {};
    FILE* f = fdopen(fd, "w");
    std::fprintf(f, "table inet %s {\n  set grants {\n    typeof meta l4proto . meta skuid . th dport\n",
                 kTable);
    std::fprintf(f, "    flags timeout\n    elements = {\n");
    std::fprintf(f, "      tcp . %u . %u timeout 1h,\n      udp . %u . %u timeout 1h", kGrantedUid, env.port,
                 kGrantedUid, env.port);
    for (std::uint32_t i = 2; i < n; ++i)
        std::fprintf(f, ",\n      tcp . %u . %u timeout 1h", 100000 + i, env.port);
    std::fprintf(f, "\n    }\n  }\n}\n");
    std::fclose(f);
    return path;
}

std::string nft_chain(const Env& env) {
    char path[] = "/tmp/jitgate-bench-chain-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return {};
    FILE* f = fdopen(fd, "w");
    std::fprintf(f,
                 "table inet %s {\n  chain out {\n    type filter hook output priority 0; policy accept;\n"
                 "    meta l4proto { tcp, udp } th dport %u fib daddr type local "
                 "meta l4proto . meta skuid . th dport @grants accept\n"
                 "    meta l4proto { tcp, udp } th dport %u fib daddr type local drop\n  }\n}\n",
                 kTable, env.port, env.port);
    std::fclose(f);
    return path;
}

// Runs `body` as the user nobody (real, effective and fs uid; the saved uid
// stays root so that the benchmark can become root again).
template <typename F>
auto as_user(std::uint32_t uid, F&& body) {
    struct Back {
        ~Back() {
            if (setresuid(0, 0, 0) != 0) std::abort();
        }
    };
    if (setresuid(uid, uid, 0) != 0) std::abort();
    Back back;
    return body();
}
template <typename F>
auto as_nobody(F&& body) {
    return as_user(kGrantedUid, std::forward<F>(body));
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

// ns per iteration of `n` UDP connect + send, or a negative errno.
double udp_loop(const Env& env, std::uint32_t n) {
    return as_nobody([&]() -> double {
        const sockaddr_in to = loopback(env.port);
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -errno;
        const std::uint64_t t0 = now_ns();
        for (std::uint32_t i = 0; i < n; ++i) {
            if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0 ||
                send(fd, "x", 1, 0) != 1) {
                const int e = errno;
                close(fd);
                return -e;
            }
        }
        const std::uint64_t t1 = now_ns();
        close(fd);
        return double(t1 - t0) / n;
    });
}

// ns per TCP connect + close (reset: no TIME_WAIT), or a negative errno.
double tcp_loop(const Env& env, std::uint32_t n) {
    return as_nobody([&]() -> double {
        const sockaddr_in to = loopback(env.port);
        const linger lg{1, 0};
        const std::uint64_t t0 = now_ns();
        for (std::uint32_t i = 0; i < n; ++i) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) return -errno;
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0) {
                const int e = errno;
                close(fd);
                return -e;
            }
            close(fd);
        }
        return double(now_ns() - t0) / n;
    });
}

int ring_cb(void*, void*, size_t) { return 0; }

// Whether the port is really closed to a user without a grant: a UDP
// datagram of uid 65533 is refused (EPERM from connect or send).
bool enforced(const Env& env) {
    return as_user(kGrantedUid - 1, [&] {
        const sockaddr_in to = loopback(env.port);
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        const bool refused =
            connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0 || send(fd, "x", 1, 0) != 1;
        const int e = errno;
        close(fd);
        return refused && e == EPERM;
    });
}

}  // namespace

void bench_connect(const Settings& s, Env& env, std::vector<Row>& rows) {
    Row udp{3, "connect_udp", "UDP connect + send, granted user, jitgate attached"};
    Row tcp{3, "connect_tcp", "TCP connect/close cycle, granted user, jitgate attached"};
    Row udp_nft{3, "connect_udp_nft", "UDP connect + send, granted user, nftables rules"};
    Row tcp_nft{3, "connect_tcp_nft", "TCP connect/close cycle, granted user, nftables rules"};
    for (Row* r : {&udp, &tcp, &udp_nft, &tcp_nft}) {
        r->unit = "ns/op";
        r->reference = "no program, no rules";
    }
    auto fail = [&](const std::string& why) {
        for (Row* r : {&udp, &tcp, &udp_nft, &tcp_nft}) {
            r->note = "not measured: " + why;
            rows.push_back(*r);
        }
    };
    if (s.cgroup.empty()) return fail("no private cgroup given (--cgroup; scripts/bench.sh makes one)");
    const std::string root = s.cgroup.substr(0, s.cgroup.rfind('/'));
    const std::string home = root + own_cgroup();
    if (!write_file(s.cgroup + "/cgroup.procs", std::to_string(getpid())))
        return fail("cannot move into the private cgroup " + s.cgroup);

    std::string why;
    // Listeners on loopback, in the private namespace: TCP accepted and
    // closed by a thread; UDP bound (what is not read is dropped at the socket).
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0),
        ufd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const sockaddr_in at = loopback(env.port);
    const int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, reinterpret_cast<const sockaddr*>(&at), sizeof(at)) != 0 || listen(lfd, 4096) != 0 ||
        bind(ufd, reinterpret_cast<const sockaddr*>(&at), sizeof(at)) != 0)
        why = std::string("cannot listen on loopback: ") + std::strerror(errno);
    std::atomic<bool> stop{false};
    std::thread acceptor([&] {
        while (!stop) {
            int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0) close(c);
        }
    });
    // The daemon drains the event ring; so does the benchmark while jitgate
    // runs, the same way: on a wake-up, and every JG_RING_DRAIN_MS for the
    // allow records that do not wake it.
    ring_buffer* rb = ring_buffer__new(bpf_map__fd(env.skel->maps.jg_events), ring_cb, nullptr, nullptr);
    std::atomic<bool> draining{false};
    std::thread drain([&] {
        while (!stop) {
            if (draining) {
                ring_buffer__poll(rb, JG_RING_DRAIN_MS);
                ring_buffer__consume(rb);
            } else {
                usleep(1000);
            }
        }
    });

    // A set lookup is a hash lookup whatever the set's size; loading a million
    // elements into nftables takes most of a minute, so the set holds fewer.
    const std::uint32_t nset = std::min<std::uint32_t>(s.quick ? 20000 : 100000, env.grants);
    const std::string ruleset = nft_ruleset(env, nset), chain = nft_chain(env);
    if (why.empty()) {
        progress("figure 3: nftables set of %u grants", nset);
        if (ruleset.empty() || chain.empty() || run({"nft", "-f", ruleset}) != 0)
            why = "nft could not load the equivalent rule set";
    }
    bpf_program* hooks[] = {env.skel->progs.jg_connect4, env.skel->progs.jg_connect6,
                            env.skel->progs.jg_sendmsg4, env.skel->progs.jg_sendmsg6,
                            env.skel->progs.jg_egress,   env.skel->progs.jg_ingress};
    int cg_fd = open(s.cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    enum Variant { None, Jitgate, Nft };
    std::vector<double> ns[3][2];  // [variant][udp, tcp]
    const std::uint32_t n_udp = s.quick ? 20000 : 100000, n_tcp = s.quick ? 2000 : 10000;
    for (std::uint32_t r = 0; r < s.rounds && why.empty(); ++r) {
        progress("figure 3: round %u/%u (%u UDP, %u TCP per variant)", r + 1, s.rounds, n_udp, n_tcp);
        for (int v : {None, Jitgate, Nft}) {
            std::vector<bpf_link*> links;
            if (v == Jitgate) {
                for (bpf_program* p : hooks) {
                    bpf_link* l = bpf_program__attach_cgroup(p, cg_fd);
                    if (!l) {
                        why = std::string("cannot attach to the private cgroup: ") + std::strerror(errno);
                        break;
                    }
                    links.push_back(l);
                }
                draining = true;
            } else if (v == Nft && run({"nft", "-f", chain}) != 0) {
                why = "nft could not add the output chain";
            }
            if (why.empty() && r == 0 && v != None && !enforced(env))
                why = std::string(v == Jitgate ? "jitgate" : "nftables") +
                      " did not refuse a user without a grant: the loop would not measure enforcement";
            if (why.empty()) {
                const double u = udp_loop(env, n_udp), t = tcp_loop(env, n_tcp);
                if (u < 0 || t < 0)
                    why = std::string("a granted connect failed: ") + std::strerror(int(-(u < 0 ? u : t)));
                ns[v][0].push_back(u);
                ns[v][1].push_back(t);
            }
            for (bpf_link* l : links) bpf_link__destroy(l);
            draining = false;
            if (v == Nft) run({"nft", "delete", "chain", "inet", kTable, "out"});
            if (!why.empty()) break;
        }
    }
    stop = true;
    shutdown(lfd, SHUT_RDWR);
    acceptor.join();
    drain.join();
    ring_buffer__free(rb);
    close(lfd);
    close(ufd);
    if (cg_fd >= 0) close(cg_fd);
    run({"nft", "delete", "table", "inet", kTable});
    if (!ruleset.empty()) unlink(ruleset.c_str());
    if (!chain.empty()) unlink(chain.c_str());
    write_file(home + "/cgroup.procs", std::to_string(getpid()));
    if (!why.empty()) return fail(why);

    auto fill = [&](Row& row, int variant, int proto) {
        std::vector<double> pct;
        for (std::size_t i = 0; i < ns[variant][proto].size(); ++i)
            pct.push_back((ns[variant][proto][i] / ns[None][proto][i] - 1) * 100);
        row.value = median(ns[variant][proto]);
        row.reference_value = median(ns[None][proto]);
        const double p = median(pct);
        // "+1.2 %" in one snprintf: built from a one-character literal ("+"
        // or ""), GCC 12 at -O3 warns falsely (-Wrestrict, GCC bug 105329).
        char signed_pct[32];
        std::snprintf(signed_pct, sizeof(signed_pct), "%+.1f %%", p);
        row.comparison = std::string(signed_pct);
        row.measures["pct"] = p;
        row.note = std::to_string(proto == 0 ? n_udp : n_tcp) + " ops x " + std::to_string(s.rounds) +
                   " interleaved rounds, user nobody, 127.0.0.1; " +
                   (variant == Jitgate ? std::to_string(env.grants) + " grants in the maps"
                                       : std::to_string(nset) + " elements in the set");
    };
    fill(udp, Jitgate, 0);
    fill(tcp, Jitgate, 1);
    fill(udp_nft, Nft, 0);
    fill(tcp_nft, Nft, 1);
    for (Row* r : {&udp, &udp_nft, &tcp, &tcp_nft}) rows.push_back(*r);
}

}  // namespace jgbench
