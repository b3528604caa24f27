#pragma once
// The jitgate command line, built in a function so tests can feed it argv.
#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace jg {

struct CliState {
    std::string socket = "/run/jitgate/jitgate.sock";
    bool json = false;
    // Filled by the sub-command that ran.
    std::string op;  // daemon operation, or "policy-check"
    nlohmann::json args = nlohmann::json::object();
    std::string file;  // policy check FILE
    // Raw sub-command inputs, validated in finish().
    std::string port_spec, duration, reason, ticket, approve_for;
    std::optional<std::string> from;  // request --from ADDR (set even when given empty)
    std::int64_t id = 0;
    bool pending = false, active = false, all = false;
};

std::unique_ptr<CLI::App> build_app(CliState& s);
// Turns parsed inputs into the daemon request (s.op, s.args); returns an
// error sentence for invalid input (exit code 2).
std::string finish(CliState& s);
// Runs the CLI; returns the process exit code.
int run_cli(int argc, const char* const* argv);

}  // namespace jg
