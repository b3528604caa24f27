#pragma once
// The jitgate command line, built in a function so tests can feed it argv.
#include <CLI/CLI.hpp>
#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/client.h"

namespace jg {

struct CliState {
    std::string socket = "/run/jitgate/jitgate.sock";
    std::string web;  // --web URL: operations go through jitgate-web's API (design.md §8)
    bool json = false;
    // Filled by the sub-command that ran.
    std::string op;  // daemon operation, or "policy-check" / "audit-verify" (run here)
    nlohmann::json args = nlohmann::json::object();
    std::string file;  // policy check FILE
    // Raw sub-command inputs, validated in finish().
    std::string port_spec, duration, reason, ticket, approve_for;
    std::optional<std::string> from;  // request --from ADDR (set even when given empty)
    bool from_me = false;             // request --from-me (with --web): the address jitgate-web sees
    std::string login_url;            // login URL, logout URL
    bool forget = false;              // login --forget
    // request --wait: until the request is decided, then (in a fleet) until
    // its target nodes apply it; approve and revoke --wait: the latter.
    bool wait = false;
    std::optional<std::string> on;         // request / break-glass --on SELECTOR (a fleet's nodes)
    std::optional<std::string> timeout;    // --timeout DUR, with --wait
    std::int64_t wait_timeout_ms = 10000;  // --timeout as finish() read it
    std::int64_t id = 0;
    bool pending = false, active = false, all = false;
    std::optional<std::int64_t> list_limit, list_after;  // list --limit N --after ID
    // audit [--follow] [--since TIME] [--type T]... [--port P] [--user U] [--limit N]
    bool follow = false;
    std::optional<std::string> since, audit_port, user, limit;
    std::vector<std::string> types;    // as given: repeated and/or comma-separated
    std::vector<std::string> files;    // audit verify FILE...
    bool fleet = false;                // audit verify --fleet
    std::int64_t now_us = 0;           // the wall clock --since counts back from; 0 = now
    std::vector<std::string> command;  // run ... -- COMMAND...
    // notify --config FILE [--state-dir DIR] [--status] [--retry-max DUR] (design.md §9)
    std::string notify_config, notify_state_dir, notify_retry_max;
    bool notify_status = false;
};

std::unique_ptr<CLI::App> build_app(CliState& s);
// Where s's operations go: the socket, or jitgate-web with --web.
inline Endpoint daemon_endpoint(const CliState& s) { return Endpoint(s.socket, s.web); }
// Turns parsed inputs into the daemon request (s.op, s.args); returns an
// error sentence for invalid input (exit code 2).
std::string finish(CliState& s);
// Free text that jitgated would refuse (core/text.h text_refusal: control
// characters, bidirectional controls, bytes that are not UTF-8) in
// --reason, --ticket or audit --user: the sentence (exit 3), said before
// anything is sent; nothing when all of it is printable.
std::optional<std::string> free_text_refusal(const CliState& s);
// Runs the CLI; returns the process exit code.
int run_cli(int argc, const char* const* argv);

// How request --wait polls jitgated (tests shorten the times).
struct WaitOptions {
    int poll_ms = 500;           // between two looks at the request (op "show"), each a new connection
    int unreachable_ms = 30000;  // how long jitgated may stay unreachable before giving up (exit 4)
    const std::atomic<bool>* stop = nullptr;  // set (by SIGINT) to stop waiting
    // With --json, a granted request's object is left to the caller to print
    // (request --wait goes on to wait for its target nodes).
    bool print_granted_json = true;
    // jitgate run: stdout belongs to the command, so the final state goes to
    // stderr as a human line only, and the decided request into *decided.
    bool report_on_stderr = false;
    nlohmann::json* decided = nullptr;
};
// Follows request `first` (the reply to request) until it is decided: its
// state on stderr whenever it changes; then the final state (human) or the
// request's object (--json) on stdout. Returns the exit code: 0 granted,
// 3 rejected or expired, 4 jitgated unreachable for too long, 130 stopped
// (the request stays pending).
int wait_for_decision(const CliState& s, const nlohmann::json& first, const WaitOptions& o);

// Reports a failure (`error`: its code and message): with --json as
// {"ok":false,"error":...} on stdout; the message on stderr. Returns the
// exit code for its code.
int fail(const CliState& s, const nlohmann::json& error);
// The "error" object of a reply that is not ok (empty if it has none).
nlohmann::json error_of(const nlohmann::json& reply);

}  // namespace jg
