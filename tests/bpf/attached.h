#pragma once
// The attached BPF tests: what a test run cannot show (real sockets, their
// storage, the sock_addr hooks) runs in a child process, in a network
// namespace of its own (loopback up) and a child cgroup made for the test
// (never the root cgroup), with the programs under test attached to that
// cgroup alone.  The child reports one result byte per step.
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "fixture.h"

namespace jgtest {

// The cgroup2 mount whose root is the hierarchy's root, or "".
inline std::string cgroup2_root() {
    std::ifstream mi("/proc/self/mountinfo");
    std::string line;
    while (std::getline(mi, line)) {
        const auto dash = line.find(" - ");
        if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
        std::istringstream fields(line);
        std::string id, parent, devno, root, mnt;
        fields >> id >> parent >> devno >> root >> mnt;
        if (root == "/") return mnt;
    }
    return {};
}

inline sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

// How long a child may go without reporting a step.
constexpr int kAttachedChildMs = 60000;

struct AttachedRun {
    std::string why;  // empty when the child ran
    std::string got;  // the bytes the child wrote
    int status = -1;  // its wait status
    bool clean() const { return why.empty() && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

// The child's side: its own netns and the cgroup, then `steps` (its bytes
// written as they come, so that a crash still shows how far it got).
template <typename Steps>
[[noreturn]] void attached_child(const std::string& cgroup, int out, Steps& steps) {
    if (unshare(CLONE_NEWNET) != 0 || !run_command({"ip", "link", "set", "lo", "up"})) _exit(2);
    const int procs = open((cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (procs < 0 || write(procs, "0", 1) != 1) _exit(3);
    close(procs);
    steps([out](char c) {
        if (write(out, &c, 1) != 1) _exit(4);
    });
    _exit(0);
}

// Makes the cgroup `name`, attaches `progs` to it, runs steps(emit) in the
// child (emit(char) reports one step), then detaches and removes it all.
template <typename Steps>
AttachedRun run_attached(const std::string& name, std::initializer_list<bpf_program*> progs, Steps&& steps) {
    AttachedRun r;
    const std::string root = cgroup2_root();
    if (root.empty()) {
        r.why = "no cgroup v2 hierarchy mounted";
        return r;
    }
    const std::string cgroup = root + "/jitgate-bpf-" + name + "-" + std::to_string(getpid());
    if (mkdir(cgroup.c_str(), 0700) != 0) {
        r.why = "cannot make " + cgroup + ": " + std::strerror(errno);
        return r;
    }
    const int cg = open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    std::vector<bpf_link*> links;
    for (bpf_program* p : progs) {
        bpf_link* l = cg >= 0 ? bpf_program__attach_cgroup(p, cg) : nullptr;
        if (!l) {
            r.why = std::string("cannot attach ") + bpf_program__name(p) + " to " + cgroup;
            break;
        }
        links.push_back(l);
    }
    int fds[2] = {-1, -1};
    if (r.why.empty() && pipe2(fds, O_CLOEXEC) != 0) r.why = std::string("pipe: ") + std::strerror(errno);
    if (r.why.empty()) {
        const pid_t pid = fork();
        const int fork_errno = errno;
        if (pid == 0) attached_child(cgroup, fds[1], steps);
        close(fds[1]);
        // Bounded: a child that hangs is killed, so that the links it
        // inherited close and the cgroup can go.  End of file: it is done.
        pollfd p{fds[0], POLLIN, 0};
        bool hung = true;
        char c;
        for (int idle_ms = 0; idle_ms < kAttachedChildMs;) {
            const int n = poll(&p, 1, 100);
            if (n == 0) {
                idle_ms += 100;
            } else if (n > 0 && read(fds[0], &c, 1) == 1) {
                r.got += c;
            } else if (n > 0 || errno != EINTR) {
                hung = false;
                break;
            }
        }
        close(fds[0]);
        if (pid < 0) {
            r.why = std::string("fork: ") + std::strerror(fork_errno);
        } else {
            if (hung) {
                kill(pid, SIGKILL);
                r.why = "the child did not finish within " + std::to_string(kAttachedChildMs / 1000) + " s";
            }
            if (waitpid(pid, &r.status, 0) != pid && r.why.empty())
                r.why = "the child could not be waited for";
        }
    }
    for (bpf_link* l : links) bpf_link__destroy(l);
    if (cg >= 0) close(cg);
    for (int i = 0; i < 50 && rmdir(cgroup.c_str()) != 0 && errno == EBUSY; ++i) usleep(20000);
    return r;
}

}  // namespace jgtest
