#pragma once
// `jitgate notify`: run the notifier, or (--status) show where each target stands.
#include <string>

namespace jg::notify {

struct CommandOptions {
    std::string config;
    std::string state_dir;  // "" = $STATE_DIRECTORY
    std::string socket;
    std::string retry_max;  // a duration; "" = 60s
    bool status = false;
    bool json = false;
};

// The exit code: 0, 1 (cannot run), 2 (invalid config or options), 4 (jitgated unreachable, --status).
int run_command(const CommandOptions& o);

}  // namespace jg::notify
