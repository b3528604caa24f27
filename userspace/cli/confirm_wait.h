#pragma once
// --wait on approve, revoke and request in a fleet (design.md §7): after the
// decision, which target nodes have applied it.  jitgated's op confirm says
// so per node; the CLI asks it about every 50 ms until every target has
// applied it or --timeout runs out, and measures each node's latency itself.
#include <atomic>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/app.h"
#include "core/result.h"

namespace jg {

// One target node as the wait last saw it.
struct NodeOutcome {
    std::string node;   // as jitgated sent it (escape it before showing it)
    std::string state;  // applied, pending or unresolved
    std::optional<std::int64_t>
        latency_ms;  // applied: from the deciding command to the first look that saw it
};

// What a wait saw by its end.
struct ConfirmOutcome {
    std::vector<NodeOutcome> nodes;
    bool complete = false;  // every target applied it (or cannot: unresolved)
    bool stopped = false;   // *stop became true
    // Why the last look failed, if it did: etcd unreachable (code
    // fleet_unreachable), or jitgated not reachable at all.
    std::string etcd_down, daemon_down;
    // Any other error of confirm ends the wait: its error object.
    std::optional<nlohmann::json> error;
};

// How the wait looks and sleeps; tests replace each part.
struct ConfirmHooks {
    // jitgated's reply to confirm {id, revision} (ok or not), waited for at
    // most budget_ms; an error when jitgated cannot be reached.
    std::function<Result<nlohmann::json>(std::int64_t id, std::int64_t revision, std::int64_t budget_ms)> ask;
    std::function<std::int64_t()> now_ms;           // a monotonic clock
    std::function<void(std::int64_t ms)> sleep_ms;  // returns early when *stop is set
    std::int64_t poll_ms = 50;
    bool progress = false;  // a line on stderr per node as it applies (stderr is a terminal)
    const std::atomic<bool>* stop = nullptr;
};
// The hooks of the real CLI: op confirm on s.socket, the steady clock,
// progress when stderr is a terminal.
ConfirmHooks real_confirm_hooks(const CliState& s);

// Asks confirm about grant `grant_id` at `revision` until it is complete,
// or timeout_ms after sent_ms (when the deciding command was sent, on
// hooks.now_ms's clock).  `targets` (the decision's "targets") are the
// nodes reported pending until confirm names them.
ConfirmOutcome wait_for_targets(std::int64_t grant_id, std::int64_t revision,
                                const std::vector<std::string>& targets, std::int64_t sent_ms,
                                std::int64_t timeout_ms, const ConfirmHooks& hooks);

// For the reply `result` of op (request, approve or revoke) with --wait:
// waits for its targets when it carries "revision", else reports the node
// that answered (its "node", or this host's name) as applied, at the
// latency the reply took (decided before the reply, on one host).  Then
// prints: --json the result with "nodes":[{node, state, latency_ms}];
// text one line per node (after render_human's lines, unless
// `result_shown`).  Returns the exit code: 0, or 5 when a target is still
// pending at the timeout (a sentence on stderr names them), or a confirm
// error's code.  A warning names nodes where the user is unknown
// (unresolved), for a grant.
int confirm_and_report(const CliState& s, const std::string& op, const nlohmann::json& result,
                       std::int64_t sent_ms, bool result_shown, const ConfirmHooks& hooks);

// "db-1  applied     12 ms" per node, names escaped, one column each.
std::string render_node_states(const std::vector<NodeOutcome>& nodes);

}  // namespace jg
