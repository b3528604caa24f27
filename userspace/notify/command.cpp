#include "notify/command.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "cli/client.h"
#include "core/clock.h"
#include "core/duration.h"
#include "core/text.h"
#include "notify/config.h"
#include "notify/notifier.h"
#include "notify/state.h"

namespace jg::notify {

namespace {

using json = nlohmann::json;

int status_of(const Config& cfg, const CommandOptions& o, const std::string& dir) {
    auto st = call_daemon(o.socket, "status", json::object(), 10000);
    std::optional<std::uint64_t> head;
    json failures = json::array();
    if (st && st->value("ok", false)) {
        head = (*st)["result"]["audit"].value("seq", std::uint64_t(0));
        failures = (*st)["result"].value("notify_failures", json::array());
    }
    json out = json::array();
    for (const auto& t : cfg.targets) {
        json row = {{"name", t.name}, {"url", origin_of(t.url)}};
        auto s = read_state(dir, t.name);
        if (!s) {
            row["error"] = s.error();
        } else if (*s) {
            row["seq"] = (*s)->seq;
            row["delivered_at"] = (*s)->delivered_us ? json(rfc3339_us((*s)->delivered_us)) : json(nullptr);
            if (head) row["lag"] = *head > (*s)->seq ? *head - (*s)->seq : 0;
        } else {
            row["seq"] = nullptr;  // not started yet
        }
        for (const auto& f : failures)
            if (f.value("target", "") == t.name) row["last_failure"] = f;
        out.push_back(row);
    }
    if (o.json) {
        std::cout << json({{"targets", out}, {"head_seq", head ? json(*head) : json(nullptr)}}).dump()
                  << "\n";
    } else {
        if (!head)
            std::cout << "jitgated unreachable: the lag is unknown ("
                      << escape_terminal(st ? "status refused" : st.error()) << ")\n";
        for (const auto& r : out) {
            std::string line =
                fmt::format("{}  {}  ", r["name"].get<std::string>(), r["url"].get<std::string>());
            if (r.contains("error"))
                line += r["error"].get<std::string>();
            else if (r["seq"].is_null())
                line += "not started";
            else
                line += fmt::format("delivered up to seq {}{}", r["seq"].get<std::uint64_t>(),
                                    r.contains("lag")
                                        ? fmt::format(", {} records behind", r["lag"].get<std::uint64_t>())
                                        : "");
            if (r.contains("last_failure"))
                line += fmt::format("; last failure: {}", r["last_failure"].value("error", ""));
            std::cout << escape_terminal(line) << "\n";
        }
    }
    return head ? 0 : 4;
}

}  // namespace

int run_command(const CommandOptions& o) {
    const ConfigLoad load = load_config(o.config);
    if (!load.errors.empty()) {
        for (const auto& e : load.errors) std::cerr << escape_terminal(e) << "\n";
        std::cerr << "jitgate notify: the configuration has errors; fix them and start again\n";
        return 2;
    }
    std::string dir = o.state_dir;
    if (dir.empty()) {
        const char* env = std::getenv("STATE_DIRECTORY");
        // systemd may list several, separated by ':': the first is ours.
        if (env && *env) dir = std::string(env).substr(0, std::string(env).find(':'));
    }
    if (dir.empty()) {
        std::cerr
            << "jitgate notify: no state directory: give --state-dir DIR (systemd sets $STATE_DIRECTORY)\n";
        return 2;
    }
    struct stat sd {};
    if (stat(dir.c_str(), &sd) != 0 || !S_ISDIR(sd.st_mode)) {
        std::cerr << "jitgate notify: the state directory " << escape_terminal(dir)
                  << " does not exist; create it\n";
        return 2;
    }
    if (o.status) return status_of(load.config, o, dir);
    Options opts;
    opts.socket = o.socket;
    opts.state_dir = dir;
    if (!o.retry_max.empty()) {
        auto d = parse_duration(o.retry_max);
        if (!d) {
            std::cerr << "jitgate notify: --retry-max: " << escape_terminal(d.error()) << "\n";
            return 2;
        }
        opts.retry_max_ms = *d * 1000;
        opts.retry_first_ms = std::min(opts.retry_first_ms, opts.retry_max_ms);
    }
    const std::atomic<bool>& stop = stop_on_signals({SIGINT, SIGTERM});
    return run(load.config, opts, stop);
}

}  // namespace jg::notify
