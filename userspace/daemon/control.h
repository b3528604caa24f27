#pragma once
// The control socket's dispatcher: one request line in, its reply lines out.
// The operation is found and its arguments parsed once by the table of
// core/operations.h; a second table here maps each operation to what does
// it (the workflow, or the daemon's status, metrics and audit stream).
// A new socket operation: a row in core/operations.cpp, a handler here.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/operations.h"
#include "core/store.h"
#include "core/workflow.h"
#include "daemon/server.h"

namespace jg {

// The user a verified ID token names, and how it proved it.
struct TokenUser {
    std::string user;
    TokenAuth auth;
};

// What the operations reach in the daemon.
struct ControlTarget {
    Workflow& wf;
    Store& store;
    AuditSink& audit;
    // The caller's user name now (the uid as text when it has none).
    std::function<std::string(std::uint32_t uid)> name_of;
    // Scoped to what the caller may see; an error when the store cannot be read.
    std::function<Result<json>(const Caller&)> status;
    std::function<Result<json>()> metrics;
    // The audit stream's lines for peer p (history, the result line, and
    // following when asked).
    std::function<std::string(const Peer& p, const Caller& c, std::int64_t id, const AuditArgs& args)>
        audit_stream;
    // In a fleet (design.md §7): the ledger's answer to an operation it
    // decides (request, approve, ..., nodes, confirm, policy_*); nothing for
    // the rest.  Unset on a single host: the fleet's own operations are
    // refused there with not_fleet.
    std::function<std::optional<Reply>(Op, const Caller&, const OpArgs&)> fleet = {};
    // This node's name: decisions' replies carry it (`"node"`), so that a
    // --wait on a single host names the node that applied it.
    std::string node = {};
    // [identity.oidc] (design.md §8): who a request's "token" names, or the
    // check it failed.  Unset: tokens are refused (no [identity.oidc]).
    std::function<Result<TokenUser>(const std::string& token)> verify_token = {};
    // The uid of a local account by name (NSS): the account a token's user acts as.
    std::function<std::optional<std::uint32_t>(const std::string& user)> uid_of = {};
    // A notify_failed record written (design.md §9): status shows each
    // target's last.  Unset: only the record.
    std::function<void(const json& record)> notify_failed = {};
    // A refused token by the peer `uid`: true when its auth_failed record is
    // written whole, false when it is only counted (core/refusal_budget.h).
    // Unset: every one is written.
    std::function<bool(std::uint32_t uid)> record_refusal = {};
};

// The reply to one request line from peer p: its parse error, the
// operation's result or error (store failures are failed Replies, rolled
// back, answered "internal"), or the audit stream.  What an operation
// recorded is written, and the store synced, before the reply is returned;
// when the audit log cannot write it, nothing is answered (the daemon stops).
std::string control_handle(const ControlTarget& t, const Peer& p, const std::string& line);

// The operations the dispatcher has a handler for (every one of the table's).
std::vector<Op> handled_operations();

}  // namespace jg
