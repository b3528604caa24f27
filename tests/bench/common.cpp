// Rows, statistics, commands and map memory for jitgate_bench.
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <fstream>

#include "bench.h"

extern char** environ;

namespace jgbench {

json to_json(const Row& r) {
    json j = {{"figure", r.figure},
              {"id", r.id},
              {"what", r.what},
              {"unit", r.unit},
              {"reference", r.reference},
              {"comparison", r.comparison},
              {"note", r.note}};
    j["value"] = r.value ? json(*r.value) : json(nullptr);
    j["reference_value"] = r.reference_value ? json(*r.reference_value) : json(nullptr);
    j["measures"] = json::object();
    for (const auto& [k, v] : r.measures) j["measures"][k] = v;
    return j;
}

double median(std::vector<double> v) { return percentile(std::move(v), 50); }

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    // Linear interpolation between closest ranks.
    const double pos = p / 100.0 * double(v.size() - 1);
    const std::size_t lo = std::size_t(pos);
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

std::string num(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
    return buf;
}

int run(const std::vector<std::string>& argv, std::string* out) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int pipefd[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out) {
        if (pipe2(pipefd, O_CLOEXEC) != 0) return -1;
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    } else {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    }
    pid_t pid = 0;
    const int e = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (out) close(pipefd[1]);
    if (e != 0) {
        if (out) close(pipefd[0]);
        return -1;
    }
    if (out) {
        char buf[4096];
        ssize_t n;
        while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) out->append(buf, std::size_t(n));
        close(pipefd[0]);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::optional<std::uint64_t> map_memlock(int map_fd) {
    std::ifstream f("/proc/self/fdinfo/" + std::to_string(map_fd));
    std::string key;
    while (f >> key) {
        if (key == "memlock:") {
            std::uint64_t v = 0;
            if (f >> v) return v;
            return std::nullopt;
        }
    }
    return std::nullopt;
}

bool pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

void progress(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    static const std::uint64_t start = now_ns();
    std::fprintf(stderr, "bench: [%5.1f s] ", double(now_ns() - start) / 1e9);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
}

}  // namespace jgbench
