#include "core/workflow.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/clock.h"
#include "core/duration.h"
#include "core/protocol.h"
#include "core/text.h"

namespace jg {

namespace {

// Refuses a network wider than one host unless the port's allow_prefix takes it.
std::optional<std::string> prefix_refusal(const PortPolicy& p, std::uint16_t port, Proto proto,
                                          const SourceNet& net) {
    if (is_host(net)) return std::nullopt;
    const bool v4 = is_v4(net);
    const std::optional<int>& allowed = v4 ? p.allow_prefix_v4 : p.allow_prefix_v6;
    const std::string where = fmt::format("port {}/{}", port, proto_name(proto));
    const std::string text = format_source(net);
    if (!p.allow_prefix_v4 && !p.allow_prefix_v6)
        return fmt::format(
            "{} accepts single hosts only with --from (policy allow_prefix is not set): "
            "ask for one address instead of {}",
            where, text);
    if (!allowed)
        return fmt::format(
            "{} accepts single {} hosts only with --from (policy allow_prefix.{} is not set): "
            "ask for one address instead of {}",
            where, v4 ? "IPv4" : "IPv6", v4 ? "ipv4" : "ipv6", text);
    if (net.prefix < *allowed)
        return fmt::format(
            "{} accepts prefixes up to /{} for {}: {} is wider, so ask for a /{} or a narrower "
            "network",
            where, *allowed, v4 ? "IPv4" : "IPv6", text, *allowed);
    return std::nullopt;
}

}  // namespace

void Workflow::put_src(json& j, const std::string& src) {
    if (!src.empty()) j["src"] = src;
}

void Workflow::put_request_fields(json& ev, const RequestRow& r) {
    ev.update(
        {{"request_id", r.id}, {"port", r.port}, {"proto", proto_name(r.proto)}, {"requester", r.user}});
    put_src(ev, r.src);
    if (r.extends) ev["extends"] = r.extends;
}

Workflow::Workflow(Store& store, Directory& dir, GrantSink& sink, AuditSink& audit, Clock& clock,
                   std::string boot_id)
    : store_(store), dir_(dir), sink_(sink), audit_(audit), clock_(clock), boot_id_(std::move(boot_id)) {}

json Workflow::base_event(const char* type, const Caller* actor) {
    json e = {{"type", type}};
    if (actor) {
        e["uid"] = actor->uid;
        e["user"] = actor->user;
        if (actor->pid) e["pid"] = actor->pid;
        if (actor->token)
            e.update(
                {{"auth", "oidc"}, {"issuer", actor->token->issuer}, {"subject", actor->token->subject}});
    }
    return e;
}

json Workflow::grant_event(const char* type, const GrantRow& g, const Caller* actor) {
    json e = base_event(type, actor);
    if (!actor) {
        e["uid"] = g.uid;
        e["user"] = g.user;
    }
    e.update(
        {{"grant_id", g.id}, {"request_id", g.request_id}, {"port", g.port}, {"proto", proto_name(g.proto)}});
    put_src(e, g.src);
    return e;
}

Result<bool> Workflow::close_request(RequestRow& r, const char* state, const std::string& by,
                                     const Caller* actor, const json& details) {
    r.state = state;
    r.decided_us = clock_.wall_us();
    r.decided_by = by;
    if (auto put = store_.put_request(r); !put) return put;
    json ev = base_event(r.state == "expired" ? "expire" : "reject", actor);
    if (!actor) {
        ev["uid"] = r.uid;
        ev["user"] = r.user;
    }
    put_request_fields(ev, r);
    ev.update(details);
    audit_.emit(ev);
    return true;
}

Result<bool> Workflow::start_request(RequestRow& r, const Caller& c) {
    auto id = store_.next_id();
    if (!id) return err(id.error());
    r.id = *id;
    r.uid = c.uid;
    r.user = c.user;
    r.state = "pending";
    r.created_us = clock_.wall_us();
    r.boot_id = boot_id_;
    r.deadline_boot_ns = clock_.boot_ns();
    return true;
}

Reply Workflow::store_failed(const char* op, const std::string& why) {
    store_.abandon();
    return Reply::fail(code::kInternal, fmt::format("jitgated could not complete {}: {}", op, why));
}

Reply Workflow::request_reply(const char* op, const RequestRow& r) {
    auto view = request_view(r);
    if (!view) return store_failed(op, view.error());
    return Reply::success(std::move(*view));
}

bool Workflow::matches(const Caller& c, const Principal& who) {
    if (!who.is_group) return who.name == c.user;
    // A token's user is in the groups its issuer says, not the host's.
    if (c.token)
        return std::find(c.token->groups.begin(), c.token->groups.end(), who.name) != c.token->groups.end();
    return dir_.in_group(c.uid, c.user, who.name);
}

bool Workflow::is_approver(const Caller& c, const PortPolicy& p) {
    for (const auto& a : p.approvers)
        if (matches(c, a)) return true;
    return false;
}

namespace {

// A request row for what request and break-glass ask for.
RequestRow asked(const AskArgs& a) {
    RequestRow r;
    r.port = a.port;
    r.proto = a.proto;
    r.duration_s = a.duration_s;
    r.reason = a.reason;
    return r;
}

}  // namespace

Reply Workflow::request(const Caller& c, const RequestArgs& a) {
    RequestRow r = asked(a.ask);
    const std::uint16_t port = r.port;
    const std::int64_t dur = r.duration_s;
    const Proto proto = r.proto;
    const std::string& ticket = a.ticket;
    const std::optional<SourceNet>& from = a.from;
    const PortPolicy* p = policy_->find(port, proto);
    if (!p)
        return Reply::fail(
            code::kRefused,
            fmt::format("port {}/{} is not protected by jitgate, so there is nothing to request", port,
                        proto_name(proto)));
    if (dur > p->max_duration_s)
        return Reply::fail(code::kRefused,
                           fmt::format("{} is longer than port '{}' allows: ask for {} or less",
                                       format_duration(dur), p->name, format_duration(p->max_duration_s)));
    if (p->require_reason && r.reason.find_first_not_of(' ') == std::string::npos)
        return Reply::fail(code::kRefused,
                           fmt::format("port '{}' requires a reason (--reason TEXT)", p->name));
    if (from)
        if (auto why = prefix_refusal(*p, port, proto, *from)) return Reply::fail(code::kRefused, *why);
    if (auto refused = admit(c, *p, port, proto)) return *refused;

    if (auto started = start_request(r, c); !started) return store_failed("request", started.error());
    r.ticket = ticket;
    r.deadline_us = r.created_us + p->request_ttl_s * 1000000;
    r.deadline_boot_ns += std::uint64_t(p->request_ttl_s) * 1000000000ULL;
    if (from) r.src = format_source(*from);
    if (auto put = store_.put_request(r); !put) return store_failed("request", put.error());

    json ev = base_event("request", &c);
    put_request_fields(ev, r);
    ev.update({{"duration_s", dur}, {"reason", r.reason}});
    if (!ticket.empty()) ev["ticket"] = ticket;
    audit_.emit(ev);

    for (const auto& rule : p->auto_approve) {
        if (matches(c, rule.who) && dur <= rule.max_duration_s) {
            r.approvers.push_back("auto_approve:" + rule.who.text());
            return grant_request(r, dur, "auto_approve:" + rule.who.text());
        }
    }
    return request_reply("request", r);
}

GrantRow Workflow::new_grant(const RequestRow& r, std::int64_t id, std::int64_t duration_s) {
    GrantRow g;
    g.id = id;
    g.request_id = r.id;
    g.uid = r.uid;
    g.user = r.user;
    g.port = r.port;
    g.proto = r.proto;
    g.start_us = clock_.wall_us();
    g.expires_us = g.start_us + duration_s * 1000000;
    g.expires_boot_ns = clock_.boot_ns() + std::uint64_t(duration_s) * 1000000000ULL;
    g.boot_id = boot_id_;
    g.state = "active";
    g.reason = r.reason;
    g.ticket = r.ticket;
    g.approvers = r.approvers;
    g.src = r.src;
    g.kind = r.kind;
    g.warn_boot_ns = warn_at(g);
    return g;
}

Reply Workflow::grant_request(RequestRow& r, std::int64_t duration_s, const std::string& by,
                              const Caller* actor) {
    const PortPolicy* p = policy_->find(r.port, r.proto);
    if (p) duration_s = std::min(duration_s, p->max_duration_s);
    // The decision (approve, request) is in the log before it takes effect;
    // the records of its effect (grant, break_glass, revoke of the grant it
    // replaces) follow the map write, in the batch written before the reply.
    // One transaction from the grant's id to its request: one commit.
    // A decision that cannot be recorded takes no effect.
    if (!audit_.flush())
        return Reply::fail(code::kInternal,
                           "jitgated cannot write its audit log and is stopping: nothing was granted");
    // The operation asked, for a store error's reply.
    const char* op = r.kind == kBreakGlass               ? "break_glass"
                     : by.rfind("auto_approve:", 0) == 0 ? "request"
                                                         : "approve";
    if (auto began = store_.begin(); !began) return store_failed(op, began.error());
    auto id = store_.next_id();
    if (!id) return store_failed(op, id.error());
    GrantRow g = new_grant(r, *id, duration_s);
    const bool break_glass = r.kind == kBreakGlass;
    if (break_glass) {
        // The loud one: nobody approved this, so someone reviews it
        // afterwards.  It is its own decision (no request record came
        // before it), so, as an approval's record, it is written before the
        // grant is committed or takes effect: neither a kill nor a log that
        // fails here leaves a grant that no record names.
        json bg = base_event("break_glass", actor);
        put_request_fields(bg, r);
        bg.update({{"duration_s", duration_s},
                   {"reason", g.reason},
                   {"expires_at", rfc3339_us(g.expires_us)},
                   {"grant_id", g.id}});
        audit_.emit(bg);
        if (!audit_.flush()) {
            store_.abandon();
            return Reply::fail(code::kInternal,
                               "jitgated cannot write its audit log and is stopping: nothing was granted");
        }
    }

    // A new grant for the same principal and port replaces the old one; for a
    // remote source that is whoever holds the grant for that source.
    auto active = store_.active_grant(g.uid, g.src, g.port, g.proto);
    if (!active) return store_failed(op, active.error());
    std::optional<GrantRow> old = std::move(*active);
    if (old) {
        old->state = "replaced";
        old->ended_us = g.start_us;
        old->ended_by = fmt::format("grant {}", g.id);
        if (auto put = put_grant(*old); !put) return store_failed(op, put.error());
    }
    if (auto put = put_grant(g); !put) return store_failed(op, put.error());
    r.state = "granted";
    r.grant_id = g.id;
    r.decided_us = g.start_us;
    r.decided_by = by;
    if (auto put = store_.put_request(r); !put) return store_failed(op, put.error());
    if (auto done = store_.commit(); !done) return store_failed(op, done.error());

    // Persisted first; now the kernel.
    const auto kg = kernel_grant(g);
    if (auto put = kg ? sink_.put(*kg) : Result<bool>(err(kg.error())); !put) {
        g.state = "failed";
        g.ended_us = clock_.wall_us();
        g.ended_by = "map";
        r.state = "rejected";
        r.grant_id = 0;
        r.decision_reason = put.error();
        if (old) {
            old->state = "active";
            old->ended_us = 0;
            old->ended_by.clear();
        }
        Result<bool> undone = store_.begin();
        if (undone) undone = put_grant(g);
        if (undone) undone = store_.put_request(r);
        if (undone && old) undone = put_grant(*old);
        if (undone) undone = store_.commit();
        if (!undone) return store_failed(op, undone.error());
        json ev = base_event("reject", nullptr);
        put_request_fields(ev, r);
        ev["reason"] = put.error();
        if (break_glass) ev["break_glass"] = true;
        audit_.emit(ev);
        return Reply::fail(code::kCapacity, put.error());
    }
    if (old) {
        json ev = grant_event("revoke", *old, nullptr);
        ev["reason"] = fmt::format("replaced by grant {}", g.id);
        audit_.emit(ev);
    }
    json ev = grant_event("grant", g, nullptr);
    ev.update({{"requester", g.user},
               {"duration_s", duration_s},
               {"approvers", g.approvers},
               {"reason", g.reason},
               {"expires_at", rfc3339_us(g.expires_us)}});
    if (!g.ticket.empty()) ev["ticket"] = g.ticket;
    if (break_glass) ev["break_glass"] = true;
    audit_.emit(ev);
    return request_reply(op, r);
}

Reply Workflow::approve(const Caller& c, const ApproveArgs& a) {
    const std::int64_t id = a.id;
    auto read = store_.request(id);
    if (!read) return store_failed("approve", read.error());
    std::optional<RequestRow> r = std::move(*read);
    if (!r) return Reply::fail(code::kNotFound, fmt::format("there is no request {}", id));
    if (r->state == "pending" && overdue(*r)) {
        // Its TTL ran out before the periodic sweep saw it.
        if (auto swept = expire_due(); !swept) return store_failed("approve", swept.error());
        if (read = store_.request(id); !read) return store_failed("approve", read.error());
        r = std::move(*read);
    }
    const PortPolicy* p = policy_->find(r->port, r->proto);
    // Who may decide before what became of it: a request's state is told
    // only to those who may see it.
    if (p && !is_approver(c, *p))
        return Reply::fail(code::kForbidden,
                           fmt::format("{} is not an approver of port '{}'", c.user, p->name));
    if (r->state != "pending")
        return Reply::fail(code::kConflict, fmt::format("request {} is already {}", id, r->state));
    if (!p)
        return Reply::fail(code::kRefused,
                           fmt::format("port {}/{} is no longer protected", r->port, proto_name(r->proto)));
    // The same person by uid or by name: a token's user approving what
    // their shell account asked is approving their own request.
    if ((c.uid == r->uid || c.user == r->user) && !p->self_approve)
        return Reply::fail(code::kForbidden, "you cannot approve your own request: ask another approver");
    if (std::find(r->approvers.begin(), r->approvers.end(), c.user) != r->approvers.end())
        return Reply::fail(code::kConflict, fmt::format("you have already approved request {}", id));
    std::int64_t dur = r->duration_s;
    if (a.duration_s) {
        // Checked here, after who asks and what became of the request, as
        // it always was: which refusal a caller meets first stays the same.
        const std::int64_t want = *a.duration_s;
        if (want <= 0 || want > kMaxDurationSeconds)
            return Reply::fail(code::kInvalid, "the duration must be longer than zero and at most a year");
        if (want > r->duration_s)
            return Reply::fail(code::kRefused,
                               fmt::format("an approver may shorten a request, not lengthen it: request {} "
                                           "asked for {}",
                                           id, format_duration(r->duration_s)));
        r->shortest_s = r->shortest_s ? std::min(r->shortest_s, want) : want;
    }
    if (r->shortest_s) dur = std::min(dur, r->shortest_s);
    r->approver_uids.resize(r->approvers.size(), kNoUid);  // rows from before schema 4
    r->approver_token_groups.resize(r->approvers.size());  // and 6
    r->approvers.push_back(c.user);
    r->approver_uids.push_back(c.uid);
    r->approver_token_groups.push_back(token_approver_groups(c, *p));
    // The last approval: the earlier ones count only if their approvers
    // still qualify (approvers and groups may have changed since).
    if (static_cast<int>(r->approvers.size()) >= p->approvals_required) drop_lapsed(*r, *p, &c);

    json ev = base_event("approve", &c);
    put_request_fields(ev, *r);
    ev.update({{"duration_s", dur}, {"approvers", r->approvers}, {"reason", r->reason}});
    if (!r->ticket.empty()) ev["ticket"] = r->ticket;

    if (static_cast<int>(r->approvers.size()) < p->approvals_required) {
        if (auto put = store_.put_request(*r); !put) return store_failed("approve", put.error());
        audit_.emit(ev);
        return request_reply("approve", *r);
    }
    // The grant goes to the requester's uid: refused when that uid is no
    // longer the account that asked (deleted, or its uid given to another).
    if (auto same = dir_.is_account(r->uid, r->user); !same || !*same) {
        if (!same) {
            // No answer from the user database: this approval is not kept
            // (nor recorded), so the approver's retry can still complete it;
            // approvals drop_lapsed took off stay off.
            if (!r->approvers.empty() && r->approvers.back() == c.user) {
                r->approvers.pop_back();
                r->approver_uids.pop_back();
                r->approver_token_groups.pop_back();
            }
            if (auto put = store_.put_request(*r); !put) return store_failed("approve", put.error());
            return Reply::fail(code::kInternal,
                               fmt::format("the user database could not confirm that requester {} (uid {}) "
                                           "still exists; try again",
                                           r->user, r->uid));
        }
        audit_.emit(ev);
        r->decision_reason = "the requester's account was removed";
        if (auto closed = close_request(*r, "rejected", "account_removed", nullptr,
                                        {{"duration_s", r->duration_s}, {"reason", r->decision_reason}});
            !closed)
            return store_failed("approve", closed.error());
        return Reply::fail(code::kConflict,
                           fmt::format("request {} was rejected: its requester {} no longer has uid {} "
                                       "(the account was removed)",
                                       id, r->user, r->uid));
    }
    audit_.emit(ev);
    if (r->extends) return extend_grant(*r, dur, c.user);
    return grant_request(*r, dur, c.user);
}

Reply Workflow::deny(const Caller& c, const DenyArgs& a) {
    const std::int64_t id = a.id;
    const std::string& why = a.reason;
    auto read = store_.request(id);
    if (!read) return store_failed("deny", read.error());
    std::optional<RequestRow> r = std::move(*read);
    if (!r) return Reply::fail(code::kNotFound, fmt::format("there is no request {}", id));
    const PortPolicy* p = policy_->find(r->port, r->proto);
    const bool own = c.uid == r->uid;
    if (!own && !(p && is_approver(c, *p)) && c.uid != 0)
        return Reply::fail(code::kForbidden, fmt::format("{} is not an approver of port {}/{}", c.user,
                                                         r->port, proto_name(r->proto)));
    if (r->state != "pending")
        return Reply::fail(code::kConflict, fmt::format("request {} is already {}", id, r->state));
    r->decision_reason = own && why.empty() ? "withdrawn by the requester" : why;
    json details = {
        {"duration_s", r->duration_s}, {"approvers", r->approvers}, {"reason", r->decision_reason}};
    if (!r->ticket.empty()) details["ticket"] = r->ticket;
    if (auto closed = close_request(*r, "rejected", c.user, &c, details); !closed)
        return store_failed("deny", closed.error());
    return request_reply("deny", *r);
}

Reply Workflow::revoke(const Caller& c, const RevokeArgs& a) {
    const std::int64_t id = a.id;
    auto read = store_.grant(id);
    if (!read) return store_failed("revoke", read.error());
    std::optional<GrantRow> g = std::move(*read);
    if (!g) {
        auto req = store_.request(id);
        if (!req) return store_failed("revoke", req.error());
        if (const auto& r = *req) {
            if (!r->grant_id)
                return Reply::fail(code::kConflict,
                                   fmt::format("request {} is {} and has no grant", id, r->state));
            if (read = store_.grant(r->grant_id); !read) return store_failed("revoke", read.error());
            g = std::move(*read);
        }
    }
    if (!g) return Reply::fail(code::kNotFound, fmt::format("there is no grant or request {}", id));
    const PortPolicy* p = policy_->find(g->port, g->proto);
    if (c.uid != g->uid && c.uid != 0 && !(p && is_approver(c, *p)))
        return Reply::fail(
            code::kForbidden,
            fmt::format("only the holder, an approver of port {}/{} or root can revoke grant {}", g->port,
                        proto_name(g->proto), g->id));
    if (g->state != "active")
        return Reply::fail(code::kConflict, fmt::format("grant {} is already {}", g->id, g->state));
    if (auto ended = end_grant(*g, "revoked", c.user, &c); !ended)
        return store_failed("revoke", ended.error());
    return Reply::success(grant_json(*g));
}

Reply Workflow::break_glass(const Caller& c, const BreakGlassArgs& a) {
    RequestRow r = asked(a.ask);
    const std::uint16_t port = r.port;
    const std::int64_t dur = r.duration_s;
    const Proto proto = r.proto;
    const PortPolicy* p = policy_->find(port, proto);
    if (!p)
        return Reply::fail(
            code::kRefused,
            fmt::format("port {}/{} is not protected by jitgate, so there is no glass to break", port,
                        proto_name(proto)));
    if (p->break_glass_max_s == 0)
        return Reply::fail(code::kRefused,
                           fmt::format("port '{}' has break-glass turned off (break_glass_max = \"0s\"): ask "
                                       "for access with jitgate request",
                                       p->name));
    if (p->break_glass && p->break_glass->empty())
        return Reply::fail(code::kForbidden,
                           fmt::format("port '{}' lets nobody break the glass (break_glass = []): ask for "
                                       "access with jitgate request",
                                       p->name));
    // Without a break_glass list, the port's approvers may: people already
    // trusted with this port, when the others they need are unreachable.
    if (!p->break_glass && !is_approver(c, *p))
        return Reply::fail(code::kForbidden,
                           fmt::format("{} may not break the glass on port '{}': without a break_glass list "
                                       "only its approvers may; ask for access with jitgate request",
                                       c.user, p->name));
    if (p->break_glass && std::none_of(p->break_glass->begin(), p->break_glass->end(),
                                       [&](const Principal& who) { return matches(c, who); }))
        return Reply::fail(code::kForbidden,
                           fmt::format("{} may not break the glass on port '{}' (not in its break_glass "
                                       "list): ask for access with jitgate request",
                                       c.user, p->name));
    if (dur > p->break_glass_max_s)
        return Reply::fail(
            code::kRefused,
            fmt::format("{} is longer than break-glass on port '{}' allows: ask for {} or less",
                        format_duration(dur), p->name, format_duration(p->break_glass_max_s)));

    // Pending until grant_request stores it granted.
    if (auto started = start_request(r, c); !started) return store_failed("break_glass", started.error());
    r.deadline_us = r.created_us;
    r.kind = kBreakGlass;
    return grant_request(r, dur, kBreakGlass, &c);
}

}  // namespace jg
