// jitgate_bench: the figures of BENCHMARKS.md that come from the kernel
// side, each next to its reference measured in the same run (an empty
// program, no program, nftables), as a table and as JSON.
//
//   jitgate_bench [--quick] [--json FILE] [--cgroup DIR] [--only 1,2,...] [--rounds N]
//
// Needs root.  Everything happens in a private network namespace made for
// the run (interfaces, nftables tables, sockets) and, for figure 3, in the
// child cgroup given by --cgroup (made and removed by scripts/bench.sh); no
// program is pinned, so nothing outlives the process.
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "bench.h"
#include "env.h"

using namespace jgbench;

namespace {}  // namespace

namespace jgbench {
int make_store(const char* db, const char* count, const char* port);
int sign_cost(const char* count);
}  // namespace jgbench

namespace {

int usage(const char* why) {
    std::fprintf(
        stderr,
        "jitgate_bench: %s\nusage: jitgate_bench [--quick] [--json FILE] [--cgroup DIR] [--only 1,2,...] "
        "[--rounds N]\n",
        why);
    return 2;
}

void print_table(const std::vector<Row>& rows) {
    // Goals are judged by report.py.
    std::printf("%-3s %-56s %12s %-10s %12s %s\n", "fig", "what", "value", "unit", "reference", "comparison");
    for (const auto& r : rows) {
        const std::string v = r.value ? num(*r.value, 2) : "-";
        const std::string rv = r.reference_value ? num(*r.reference_value, 2) : "-";
        std::printf("%-3d %-56s %12s %-10s %12s %s\n", r.figure, r.what.c_str(), v.c_str(), r.unit.c_str(),
                    rv.c_str(), r.comparison.c_str());
        if (!r.value) std::printf("    %s\n", r.note.c_str());
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 5 && std::string(argv[1]) == "--make-store") return make_store(argv[2], argv[3], argv[4]);
    if (argc == 3 && std::string(argv[1]) == "--sign-cost") return sign_cost(argv[2]);
    Settings s;
    std::string json_path;
    std::set<int> only;
    bool rounds_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
        if (a == "--quick") {
            s.quick = true;
        } else if (a == "--json") {
            const char* v = value();
            if (!v) return usage("--json takes a file");
            json_path = v;
        } else if (a == "--cgroup") {
            const char* v = value();
            if (!v) return usage("--cgroup takes a directory");
            s.cgroup = v;
        } else if (a == "--only") {
            const char* v = value();
            if (!v) return usage("--only takes figure numbers, e.g. 1,2");
            std::stringstream ss(v);
            std::string part;
            while (std::getline(ss, part, ',')) {
                const int f = std::atoi(part.c_str());
                if (f < 1 || f > 8) return usage("--only takes figure numbers from 1 to 8");
                only.insert(f);
            }
        } else if (a == "--rounds") {
            const char* v = value();
            const int n = v ? std::atoi(v) : 0;
            if (n < 1 || n > 51) return usage("--rounds takes a number from 1 to 51");
            s.rounds = std::uint32_t(n);
            rounds_given = true;
        } else if (a == "-v" || a == "--verbose") {
            s.verbose = true;
        } else {
            return usage(("unknown option " + a).c_str());
        }
    }
    if (!rounds_given) s.rounds = s.quick ? 3 : 7;
    if (geteuid() != 0) {
        std::fprintf(stderr,
                     "jitgate_bench: needs root (BPF, network namespaces, cgroups); run it with sudo\n");
        return 1;
    }
    auto want = [&](int f) { return only.empty() || only.count(f); };
    // Before any thread: a network namespace of our own for everything.
    if (unshare(CLONE_NEWNET) != 0) {
        std::fprintf(stderr, "jitgate_bench: cannot create a private network namespace: %s\n",
                     std::strerror(errno));
        return 1;
    }

    std::vector<Row> rows;
    Env env;
    progress("loading jitgate's programs with grant maps of %u entries", s.grants);
    if (auto why = load_env(env, s.grants); !why.empty()) {
        std::fprintf(stderr, "jitgate_bench: %s\n", why.c_str());
        return 1;
    }
    if (auto why = fill_grants(env); !why.empty()) {
        std::fprintf(stderr, "jitgate_bench: %s\n", why.c_str());
        return 1;
    }
    if (want(1) || want(2)) bench_programs(s, env, rows);
    if (want(3)) bench_connect(s, env, rows);
    if (want(4)) bench_flood(s, env, rows);
    if (want(6) || want(8)) bench_grant_load(s, env, rows);
    if (want(7)) bench_audit(s, rows);

    std::stable_sort(rows.begin(), rows.end(),
                     [](const Row& a, const Row& b) { return a.figure < b.figure; });
    print_table(rows);
    if (!json_path.empty()) {
        json out = {{"quick", s.quick}, {"grants", s.grants}, {"rounds", s.rounds}};
        out["rows"] = json::array();
        for (const auto& r : rows) out["rows"].push_back(to_json(r));
        std::ofstream f(json_path);
        f << out.dump(2) << "\n";
        if (!f) {
            std::fprintf(stderr, "jitgate_bench: cannot write %s\n", json_path.c_str());
            return 1;
        }
    }
    return 0;
}
