#include "daemon/control.h"

#include <fmt/format.h>

#include <exception>
#include <map>
#include <variant>

#include "core/protocol.h"
#include "util/log.h"

namespace jg {

namespace {

// One call of an operation: who asks, and its arguments parsed.
struct Call {
    const Peer& peer;
    const Caller& caller;
    const WireRequest& req;
    const OpArgs& args;
};

// What an operation gives: a reply, or the lines of a stream (audit).
using Outcome = std::variant<Reply, std::string>;
using Handler = Outcome (*)(const ControlTarget&, const Call&);

template <typename Args>
const Args& args(const Call& c) {
    return std::get<Args>(c.args);
}

// A status or metrics reply: the state store's error worded as the
// workflow words a failed operation.
Reply answer(Op op, Result<json> r) {
    if (r) return Reply::success(std::move(*r));
    return Reply::fail(code::kInternal,
                       fmt::format("jitgated could not complete {}: {}", op_name(op), r.error()));
}

// The --on of a request or break-glass, if the operation is one.
const std::optional<Selector>* on_of(const OpArgs& a) {
    if (const auto* r = std::get_if<RequestArgs>(&a)) return &r->on;
    if (const auto* b = std::get_if<BreakGlassArgs>(&a)) return &b->on;
    return nullptr;
}

Reply not_fleet() {
    return Reply::fail(
        code::kNotFleet,
        "this jitgated is a single host, not a node of a fleet ([fleet] etcd is not set in its "
        "policy file, nor --etcd given)");
}

// jitgate notify's report of a target failing too long: an audit record,
// so that a silent channel shows.  Only those who read every record (the
// notifier is one of daemon.auditors) may write it.
Reply notify_failed(const ControlTarget& t, const Caller& c, const NotifyFailedArgs& a) {
    if (!t.wf.sees_all(c))
        return Reply::fail(
            code::kRefused,
            "only root and members of daemon.auditors may report a notification target failing");
    json r = {{"type", "notify_failed"},
              {"uid", c.uid},
              {"user", c.user},
              {"target", a.target},
              {"url", a.url},
              {"error", a.error},
              {"failing_s", a.failing_s},
              {"pending_seq", a.pending_seq}};
    t.audit.emit(r);
    if (t.notify_failed) t.notify_failed(r);
    return Reply::success({{"recorded", true}});
}

const std::map<Op, Handler>& handlers() {
    using T = const ControlTarget&;
    using C = const Call&;
    static const std::map<Op, Handler> h = {
        {Op::Request, [](T t, C c) -> Outcome { return t.wf.request(c.caller, args<RequestArgs>(c)); }},
        {Op::Approve, [](T t, C c) -> Outcome { return t.wf.approve(c.caller, args<ApproveArgs>(c)); }},
        {Op::Deny, [](T t, C c) -> Outcome { return t.wf.deny(c.caller, args<DenyArgs>(c)); }},
        {Op::Revoke, [](T t, C c) -> Outcome { return t.wf.revoke(c.caller, args<RevokeArgs>(c)); }},
        {Op::List, [](T t, C c) -> Outcome { return t.wf.list(c.caller, args<ListArgs>(c)); }},
        {Op::BreakGlass,
         [](T t, C c) -> Outcome { return t.wf.break_glass(c.caller, args<BreakGlassArgs>(c)); }},
        {Op::Show, [](T t, C c) -> Outcome { return t.wf.show(c.caller, args<ShowArgs>(c)); }},
        {Op::Extend, [](T t, C c) -> Outcome { return t.wf.extend(c.caller, args<ExtendArgs>(c)); }},
        {Op::Status, [](T t, C c) -> Outcome { return answer(Op::Status, t.status(c.caller)); }},
        {Op::Metrics, [](T t, C) -> Outcome { return answer(Op::Metrics, t.metrics()); }},
        // The records written so far are in the history the stream reads.
        {Op::Audit,
         [](T t, C c) -> Outcome {
             if (!t.audit.flush()) return std::string();  // the log failed: nobody is answered
             // Scoped to the caller: a token's user (and its groups), not the
             // peer presenting it.
             return t.audit_stream(c.peer, c.caller, c.req.id, args<AuditArgs>(c));
         }},
        // A fleet's (design.md §7): reached here only on a single host.
        {Op::Confirm, [](T, C) -> Outcome { return not_fleet(); }},
        {Op::Nodes, [](T, C) -> Outcome { return not_fleet(); }},
        {Op::PolicyPush, [](T, C) -> Outcome { return not_fleet(); }},
        {Op::PolicyShow, [](T, C) -> Outcome { return not_fleet(); }},
        {Op::NotifyFailed,
         [](T t, C c) -> Outcome { return notify_failed(t, c.caller, args<NotifyFailedArgs>(c)); }},
        {Op::AuditFleet, [](T, C) -> Outcome { return not_fleet(); }},
    };
    return h;
}

// The operation's outcome: its handler's, or the refusal of its arguments.
Outcome run(const ControlTarget& t, const Peer& p, const Caller& c, const WireRequest& req) {
    const ParsedArgs parsed = operation(req.kind).parse(req.args);
    if (const auto* e = std::get_if<OpError>(&parsed)) return Reply::fail(e->code, e->message);
    const OpArgs& a = std::get<OpArgs>(parsed);
    if (t.fleet) {
        if (auto decided = t.fleet(req.kind, c, a)) return std::move(*decided);
    } else if (const auto* on = on_of(a); on && *on && !(t.node.size() && (*on)->node == t.node)) {
        // A single host is its only target: --on naming it is fine.
        return Reply::fail(
            code::kNotFleet,
            fmt::format("--on {}: this jitgated is a single host, not a node of a fleet; leave "
                        "--on out",
                        (*on)->text()));
    }
    const auto h = handlers().find(req.kind);
    if (h == handlers().end()) return Reply::fail(code::kInvalid, "unknown operation");
    return h->second(t, Call{p, c, req, a});
}

constexpr std::uint32_t kNobodyUid = 65534;  // nobody: owns nothing, is no one

// The caller a request's token names (the local account of its user), or
// why it is refused: one sentence naming the failed check.
Result<Caller> token_caller(const ControlTarget& t, const Peer& p, const std::string& token) {
    if (!t.verify_token)
        return err("this jitgated accepts no ID tokens ([identity.oidc] is not set in its policy)");
    auto id = t.verify_token(token);
    if (!id) return err(id.error());
    const auto uid = t.uid_of ? t.uid_of(id->user) : std::nullopt;
    if (!uid) return err(fmt::format("the token's user {} has no account on this host", id->user));
    // Root and nobody are never reached through an identity provider.
    // (Other system accounts are: the test suites' users are system
    // accounts.  Which accounts a provider's names may reach is the
    // operator's choice of username_claim: README.)
    if (*uid == 0)
        return err(fmt::format("the token's user {} is root, which no token may act as", id->user));
    if (*uid == kNobodyUid)
        return err(
            fmt::format("the token's user {} is nobody (uid {}), which no token may act as", id->user, *uid));
    if (t.name_of(*uid) != id->user)
        return err(fmt::format("the token's user {} is not the name of uid {} on this host", id->user, *uid));
    return Caller{*uid, p.pid, id->user, std::move(id->auth)};
}

// A refused token: recorded (auth_failed, without the token), or counted
// for the window's closing record when many are, and answered.
std::string refuse_token(const ControlTarget& t, const Peer& p, const WireRequest& req,
                         const std::string& why) {
    if (!t.record_refusal || t.record_refusal(p.uid)) {
        json ev = {{"type", "auth_failed"}, {"uid", p.uid}, {"user", t.name_of(p.uid)},
                   {"auth", "oidc"},        {"op", req.op}, {"reason", why}};
        if (p.pid) ev["pid"] = p.pid;
        t.audit.emit(std::move(ev));
        if (!t.audit.flush()) return {};  // not recorded: nobody is told (run() stops)
    }
    return reply_error(req.id, code::kAuthFailed, fmt::format("token refused: {}", why));
}

}  // namespace

std::string control_handle(const ControlTarget& t, const Peer& p, const std::string& line) {
    WireError we;
    auto req = parse_request(line, &we);
    if (!req) return reply_error(we.id, code::kInvalid, we.message);
    Caller c{p.uid, p.pid, t.name_of(p.uid)};
    if (req->token) {
        // Any local user may present a token: the token is the proof, and
        // the operation is then the token's user's, never the peer's.
        Result<Caller> who = err("the token was not checked");
        try {
            who = token_caller(t, p, *req->token);
        } catch (const std::exception& e) {  // a fault of ours (memory): refused, never let through
            who = err(fmt::format("jitgated could not check the token: {}", e.what()));
        }
        if (!who) return refuse_token(t, p, *req, who.error());
        c = std::move(*who);
    }
    Reply r;
    try {
        Outcome out = run(t, p, c, *req);
        if (auto* stream = std::get_if<std::string>(&out)) return std::move(*stream);
        r = std::move(std::get<Reply>(out));
    } catch (const std::exception& e) {
        // Store errors are results (Workflow::store_failed); this is the net
        // for a fault of the daemon's own (a bug, memory): the caller is told
        // and the daemon goes on with the transaction abandoned.
        t.store.abandon();
        r = Reply::fail(code::kInternal,
                        fmt::format("jitgated could not complete {}: {}", req->op, e.what()));
    }
    const bool decision = req->kind == Op::Request || req->kind == Op::Approve || req->kind == Op::Revoke ||
                          req->kind == Op::BreakGlass || req->kind == Op::Extend;
    if (r.ok && decision && !t.node.empty() && r.result.is_object() && !r.result.contains("node"))
        r.result["node"] = t.node;
    // What went wrong on this side (a store error, an unanswered user
    // database) is also the operator's to know.
    if (!r.ok && r.code == code::kInternal) log(fmt::format("uid {}: {}", p.uid, r.message));
    // Written and durable before anyone is told (store.h: commits are
    // fsynced here, not one by one, so that a grant reaches the map first).
    if (!t.audit.flush()) return {};  // not recorded: nobody is told (run() stops)
    // A store that cannot make a decision durable is not one to go on with.
    value_or_throw(t.store.sync());
    return r.ok ? reply_ok(req->id, r.result) : reply_error(req->id, r.code, r.message);
}

std::vector<Op> handled_operations() {
    std::vector<Op> ops;
    for (const auto& [op, h] : handlers()) ops.push_back(op);
    return ops;
}

}  // namespace jg
