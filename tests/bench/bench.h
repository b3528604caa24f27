#pragma once
// What the parts of jitgate_bench share: the figure rows it reports (each a
// measurement next to its reference from the same run, and the numbers its
// goal is judged on: report.py holds the goals), timing and statistics, running a command, and what a map
// costs the kernel.
#include <sched.h>
#include <time.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace jgbench {

using json = nlohmann::json;

// One line of the table.  `value` is empty when not measured, and `note`
// then says why.
struct Row {
    Row(int fig, std::string key, std::string text)
        : figure(fig), id(std::move(key)), what(std::move(text)) {}
    int figure = 0;
    std::string id;    // stable key for machines: "xdp_deny"
    std::string what;  // for people
    std::optional<double> value;
    std::string unit;
    std::string reference;  // what it stands next to
    std::optional<double> reference_value;
    std::string comparison;  // "+3.1 ns", "1.42x", "0.6 %"
    std::string note;
    // The numbers the goal is judged on besides `value` (report.py holds
    // the goals): "delta_ns", "ratio", "pct", "vs_nft", ...
    std::map<std::string, double> measures;
};

json to_json(const Row& r);

// Settings every part reads.
struct Settings {
    bool quick = false;
    std::uint32_t grants = 1000000;  // grants loaded for figures 1, 2, 4 and 6
    std::uint32_t rounds = 5;        // interleaved rounds, median reported
    std::string cgroup;              // a private child cgroup (figure 3)
    bool verbose = false;
};

// CLOCK_MONOTONIC in ns.
inline std::uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1000000000ULL + std::uint64_t(ts.tv_nsec);
}

double median(std::vector<double> v);
double percentile(std::vector<double> v, double p);  // p in [0, 100]

// "12.3", with `digits` decimals.
std::string num(double v, int digits = 1);

// Runs argv (PATH lookup, no shell); the exit status, or -1 when it could not
// run.  Output goes to /dev/null unless `out` is given.
int run(const std::vector<std::string>& argv, std::string* out = nullptr);

// The "memlock:" line of /proc/self/fdinfo/<fd> of a map: what the kernel
// charges for it (for a BPF_F_NO_PREALLOC hash: the buckets plus the
// elements present).
std::optional<std::uint64_t> map_memlock(int map_fd);

// Pins the calling thread to `cpu`; false if it could not.
bool pin_to_cpu(int cpu);

// Progress for people on stderr.
void progress(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// The parts; each appends its rows.
struct Env;
void bench_programs(const Settings& s, Env& env, std::vector<Row>& rows);    // figures 1 and 2
void bench_grant_load(const Settings& s, Env& env, std::vector<Row>& rows);  // figures 6 and 8 (kernel)
void bench_audit(const Settings& s, std::vector<Row>& rows);                 // figure 7
void bench_connect(const Settings& s, Env& env, std::vector<Row>& rows);     // figure 3
void bench_flood(const Settings& s, Env& env, std::vector<Row>& rows);       // figure 4

}  // namespace jgbench
