#pragma once
// The control socket's operations, in one table: each operation's name (the
// wire's "op", the CLI's), the arguments it takes (the wire schema that
// parse_request checks) and the function that turns them, once, into the
// typed arguments the workflow and the daemon's dispatcher take. A new
// operation is one row here, one Args struct and one handler in
// daemon/control.cpp.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/audit_query.h"
#include "core/keys.h"
#include "core/selector.h"

namespace jg {

using json = nlohmann::json;

enum class Op {
    Request,
    Approve,
    Deny,
    Revoke,
    List,
    BreakGlass,
    Show,
    Status,
    Metrics,
    Audit,
    // The fleet's (design.md §7); a single host refuses them with one sentence.
    Confirm,
    Nodes,
    PolicyPush,
    PolicyShow,
    // More time on an active grant, decided like a request (design.md §9).
    Extend,
    // The notifier's (design.md §9): a webhook target failing too long.
    NotifyFailed,
    // The witnessed audit (design.md §7.3): every node's published heads checked.
    AuditFleet,
};

// What request and break_glass both ask for.
struct AskArgs {
    std::uint16_t port = 0;
    Proto proto = Proto::Tcp;
    std::int64_t duration_s = 0;
    std::string reason;  // may be empty
};
struct RequestArgs {
    static constexpr Op kOp = Op::Request;
    AskArgs ask;
    std::string ticket;             // may be empty
    std::optional<SourceNet> from;  // a remote principal
    std::optional<Selector> on;     // the fleet's target nodes; none: the node asked
};
struct ApproveArgs {
    static constexpr Op kOp = Op::Approve;
    std::int64_t id = 0;
    // Checked against the request (at most what it asked for) by approve.
    std::optional<std::int64_t> duration_s;
};
struct DenyArgs {
    static constexpr Op kOp = Op::Deny;
    std::int64_t id = 0;
    std::string reason;
};
struct RevokeArgs {
    static constexpr Op kOp = Op::Revoke;
    std::int64_t id = 0;
};
struct ListArgs {
    static constexpr Op kOp = Op::List;
    std::string filter = "default";  // pending, active, all or default
    std::int64_t limit = 100;
    std::int64_t after = 0;
};
struct BreakGlassArgs {
    static constexpr Op kOp = Op::BreakGlass;
    AskArgs ask;  // the reason is not empty
    std::optional<Selector> on;
};
struct ShowArgs {
    static constexpr Op kOp = Op::Show;
    std::int64_t id = 0;
};
struct StatusArgs {
    static constexpr Op kOp = Op::Status;
};
struct MetricsArgs {
    static constexpr Op kOp = Op::Metrics;
};
struct AuditArgs {
    static constexpr Op kOp = Op::Audit;
    AuditFilter filter;
    bool follow = false;
    std::int64_t limit = 50;  // past records; 0 when following without since_us or limit
    // The records after this seq, oldest first (at most limit), instead of
    // the newest: a follower that resumes where it stopped (jitgate notify).
    std::optional<std::uint64_t> after_seq;
};

// Which target nodes have applied grant `id` as of `revision` (the etcd
// revision of the decision or revocation that a --wait waits for).
struct ConfirmArgs {
    static constexpr Op kOp = Op::Confirm;
    std::int64_t id = 0;
    std::int64_t revision = 0;
};
struct NodesArgs {
    static constexpr Op kOp = Op::Nodes;
};
// A new fleet policy version: the text of a file of [[port]] tables.
struct PolicyPushArgs {
    static constexpr Op kOp = Op::PolicyPush;
    std::string text;
    std::string file;  // names it in errors and in the version's record
};
struct PolicyShowArgs {
    static constexpr Op kOp = Op::PolicyShow;
};
// More time on grant `id` (or on the grant request `id` led to).
struct ExtendArgs {
    static constexpr Op kOp = Op::Extend;
    std::int64_t id = 0;
    std::int64_t duration_s = 0;  // added to the grant's end
    std::string reason;           // may be empty: the grant's own then
};
// jitgate notify (design.md §9): target `target` (its name; `url` its
// scheme, host and port only: a webhook's path may hold its secret) has
// failed since `failing_s` seconds ago, with `error`; `pending_seq` is the
// first record it has not received.
struct NotifyFailedArgs {
    static constexpr Op kOp = Op::NotifyFailed;
    std::string target;
    std::string url;
    std::string error;
    std::int64_t failing_s = 0;
    std::int64_t pending_seq = 0;
};
// jitgate audit verify --fleet (root).
struct AuditFleetArgs {
    static constexpr Op kOp = Op::AuditFleet;
};
using OpArgs = std::variant<RequestArgs, ApproveArgs, DenyArgs, RevokeArgs, ListArgs, BreakGlassArgs,
                            ShowArgs, StatusArgs, MetricsArgs, AuditArgs, ConfirmArgs, NodesArgs,
                            PolicyPushArgs, PolicyShowArgs, ExtendArgs, NotifyFailedArgs, AuditFleetArgs>;

// Why an operation's arguments were refused: an error code (protocol.h
// code::) and the sentence the user reads.
struct OpError {
    std::string code;
    std::string message;
};
using ParsedArgs = std::variant<OpArgs, OpError>;

enum class ArgType { Int, Str, Bool, StrList };
struct ArgSpec {
    const char* name;
    ArgType type;
    bool required;
};

struct Operation {
    Op op;
    const char* name;
    std::vector<ArgSpec> args;
    // The typed arguments of `args`, which the schema above already checked
    // (names, types, required); the refusal when a value is not valid.
    ParsedArgs (*parse)(const json& args);
};

const std::vector<Operation>& operations();
const Operation* find_operation(std::string_view name);
const Operation& operation(Op op);
inline const char* op_name(Op op) { return operation(op).name; }

// Args's operation's parse, for a caller that knows which one it holds.
template <typename Args>
std::variant<Args, OpError> parse_as(const json& args) {
    ParsedArgs p = operation(Args::kOp).parse(args);
    if (auto* e = std::get_if<OpError>(&p)) return *e;
    return std::get<Args>(std::get<OpArgs>(std::move(p)));
}

}  // namespace jg
