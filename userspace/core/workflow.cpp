#include "core/workflow.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "core/clock.h"
#include "core/duration.h"
#include "core/protocol.h"
#include "core/text.h"

namespace jg {

namespace {

// An approval recorded before approvers' uids were kept (schema 3): it
// cannot be checked, so it lapses at the last approval.
constexpr std::uint32_t kNoUid = std::numeric_limits<std::uint32_t>::max();

// list shows the break-glass grants of the last week for review, at most this many.
constexpr std::int64_t kBreakGlassReviewUs = 7LL * 24 * 3600 * 1000000;
constexpr int kBreakGlassReviewMax = 100;

// A remote principal is named in every record about it; a local one has no src.
void put_src(json& j, const std::string& src) {
    if (!src.empty()) j["src"] = src;
}

// The fields that name request r in a record: the request, its port, its
// requester and, for a remote principal, its source.
void put_request_fields(json& ev, const RequestRow& r) {
    ev.update(
        {{"request_id", r.id}, {"port", r.port}, {"proto", proto_name(r.proto)}, {"requester", r.user}});
    put_src(ev, r.src);
}

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

Workflow::Workflow(Store& store, Directory& dir, GrantSink& sink, AuditSink& audit, Clock& clock,
                   std::string boot_id)
    : store_(store), dir_(dir), sink_(sink), audit_(audit), clock_(clock), boot_id_(std::move(boot_id)) {}

json Workflow::base_event(const char* type, const Caller* actor) {
    json e = {{"type", type}};
    if (actor) {
        e["uid"] = actor->uid;
        e["user"] = actor->user;
        if (actor->pid) e["pid"] = actor->pid;
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
    return who.is_group ? dir_.in_group(c.uid, c.user, who.name) : who.name == c.user;
}

bool Workflow::is_approver(const Caller& c, const PortPolicy& p) {
    for (const auto& a : p.approvers)
        if (matches(c, a)) return true;
    return false;
}

Result<json> Workflow::request_view(const RequestRow& r) {
    json j = {{"request_id", r.id},
              {"state", r.state},
              {"uid", r.uid},
              {"user", r.user},
              {"port", r.port},
              {"proto", proto_name(r.proto)},
              {"duration_s", r.duration_s},
              {"reason", r.reason},
              {"approvers", r.approvers},
              {"created_at", rfc3339_us(r.created_us)}};
    if (!r.ticket.empty()) j["ticket"] = r.ticket;
    put_src(j, r.src);
    if (r.state == "pending") {
        j["expires_at"] = rfc3339_us(r.deadline_us);
        const PortPolicy* p = policy_->find(r.port, r.proto);
        j["approvals_required"] = p ? p->approvals_required : 0;
        // Who can decide it: what a waiting requester wants to know.
        json who = json::array();
        if (p)
            for (const auto& a : p->approvers) who.push_back(a.text());
        j["eligible_approvers"] = who;
    }
    if (r.decided_us) j["decided_at"] = rfc3339_us(r.decided_us);
    if (!r.decided_by.empty()) j["decided_by"] = r.decided_by;
    if (!r.decision_reason.empty()) j["decision_reason"] = r.decision_reason;
    if (r.grant_id) {
        j["grant_id"] = r.grant_id;
        auto found = store_.grant(r.grant_id);
        if (!found) return err(found.error());
        if (const auto& g = *found) {
            j["expires_at"] = rfc3339_us(g->expires_us);
            j["grant_state"] = g->state;
            if (g->state == "active") j["remaining_s"] = remaining_s(*g);
        }
    }
    if (r.kind == kBreakGlass) j["break_glass"] = true;
    return j;
}

std::int64_t Workflow::remaining_s(const GrantRow& g) {
    const std::uint64_t now = clock_.boot_ns();
    return g.expires_boot_ns > now ? std::int64_t((g.expires_boot_ns - now) / 1000000000ULL) : 0;
}

json Workflow::grant_json(const GrantRow& g) {
    json j = {{"grant_id", g.id},
              {"request_id", g.request_id},
              {"state", g.state},
              {"uid", g.uid},
              {"user", g.user},
              {"port", g.port},
              {"proto", proto_name(g.proto)},
              {"approvers", g.approvers},
              {"reason", g.reason},
              {"started_at", rfc3339_us(g.start_us)},
              {"expires_at", rfc3339_us(g.expires_us)}};
    if (!g.ticket.empty()) j["ticket"] = g.ticket;
    put_src(j, g.src);
    if (g.state == "active") {
        j["remaining_s"] = remaining_s(g);
    } else {
        j["ended_at"] = rfc3339_us(g.ended_us);
        j["ended_by"] = g.ended_by;
    }
    if (g.kind == kBreakGlass) j["break_glass"] = true;
    return j;
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
    if (break_glass) {
        // The loud one: nobody approved this, so someone reviews it afterwards.
        json bg = base_event("break_glass", actor);
        put_request_fields(bg, r);
        bg.update({{"duration_s", duration_s},
                   {"reason", g.reason},
                   {"expires_at", rfc3339_us(g.expires_us)},
                   {"grant_id", g.id}});
        audit_.emit(bg);
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
    if (c.uid == r->uid && !p->self_approve)
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
    r->approvers.push_back(c.user);
    r->approver_uids.push_back(c.uid);
    // The last approval: the earlier ones count only if their approvers
    // still qualify (approvers and groups may have changed since).
    if (static_cast<int>(r->approvers.size()) >= p->approvals_required) drop_lapsed(*r, *p);

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

Result<bool> Workflow::end_grant(GrantRow& g, const std::string& state, const std::string& by,
                                 const Caller* actor) {
    std::vector<GrantRow> one{g};
    auto ended = end_grants(one, state, by, actor);
    g = one.front();
    return ended;
}

namespace {

// Whether ending a grant on this port ends its TCP connections too.
bool cuts(const Policy& policy, const GrantRow& g) {
    if (g.proto != Proto::Tcp) return false;
    const PortPolicy* p = policy.find(g.port, g.proto);
    return p && !p->drain && !p->audit;
}

// Whether cut connection c belongs to grant g by its principal: the
// kernel's record of the admitting grant can be gone (an evicted flow, a
// socket from before the programs) or name an earlier grant of the same
// principal (a renewed grant keeps the connections of the one it replaced).
bool same_principal(const CutConnection& c, const GrantRow& g) {
    if (c.port != g.port) return false;
    if (c.local) return g.src.empty() && c.uid == g.uid;
    if (g.src.empty()) return false;
    auto net = parse_source(g.src);
    return net && net_contains(*net, c.peer);
}

}  // namespace

Result<bool> Workflow::end_grants(std::vector<GrantRow>& gs, const std::string& state, const std::string& by,
                                  const Caller* actor) {
    bool cut = false;
    for (auto& g : gs) {
        g.state = state;
        g.ended_us = clock_.wall_us();
        g.ended_by = by;
        if (auto put = put_grant(g); !put) return put;
        if (const auto kg = kernel_grant(g)) sink_.remove(*kg);
        cut = cut || cuts(*policy_, g);
    }
    // The maps no longer hold these grants, so the kernel refuses their
    // connections' packets: end the connections rather than leave them hanging.
    std::vector<CutConnection> ended = cut ? sink_.cut_connections() : std::vector<CutConnection>{};
    std::vector<int> counts(gs.size(), 0);
    for (const auto& c : ended) {
        std::size_t i = 0;
        while (i < gs.size() && !(c.grant_id && c.grant_id == gs[i].id)) ++i;
        if (i == gs.size())
            for (i = 0; i < gs.size() && !same_principal(c, gs[i]);) ++i;
        if (i < gs.size())
            ++counts[i];
        else
            stray_cuts_.push_back(c);
    }
    for (std::size_t i = 0; i < gs.size(); ++i) {
        const GrantRow& g = gs[i];
        json ev = grant_event(state == "revoked" ? "revoke" : "expire", g, actor);
        ev.update({{"requester", g.user},
                   {"approvers", g.approvers},
                   {"reason", g.reason},
                   {"duration_s", (g.expires_us - g.start_us) / 1000000},
                   {"used_s", used_s(g)},
                   {"ended_by", by}});
        if (!g.ticket.empty()) ev["ticket"] = g.ticket;
        if (g.kind == kBreakGlass) ev["break_glass"] = true;
        if (g.proto == Proto::Tcp) ev["connections_ended"] = counts[i];
        audit_.emit(ev);
    }
    return true;
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

Reply Workflow::list(const Caller& c, const ListArgs& a) {
    const std::string& f = a.filter;
    json out = {{"requests", json::array()}, {"grants", json::array()}, {"break_glass", json::array()}};
    if (auto failed = list_page(c, a, out)) return *failed;
    const bool all = sees_all(c);
    // For review: every break-glass grant of the last week, whatever became of it.
    if (f == "all" || f == "default") {
        auto glass =
            store_.grants_of_kind(kBreakGlass, clock_.wall_us() - kBreakGlassReviewUs, kBreakGlassReviewMax);
        if (!glass) return store_failed("list", glass.error());
        for (auto& g : *glass)
            if (json row = grant_json(g); all || concerns(c, row, nullptr))
                out["break_glass"].push_back(std::move(row));
    }
    return Reply::success(out);
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

Reply Workflow::show(const Caller& c, const ShowArgs& a) {
    const std::int64_t id = a.id;
    auto read = store_.request(id);
    if (!read) return store_failed("show", read.error());
    std::optional<RequestRow> r = std::move(*read);
    if (!r) {
        auto grant = store_.grant(id);
        if (!grant) return store_failed("show", grant.error());
        if (const auto& g = *grant)
            return Reply::fail(code::kNotFound, fmt::format("{} is a grant, not a request: its request is {}",
                                                            id, g->request_id));
        return Reply::fail(code::kNotFound, fmt::format("there is no request {}", id));
    }
    auto view = request_view(*r);
    if (!view) return store_failed("show", view.error());
    if (!sees_all(c) && !concerns(c, *view, nullptr))
        return Reply::fail(code::kForbidden,
                           fmt::format("request {} is not yours and you are not an approver of its port: ask "
                                       "its requester or an approver",
                                       id));
    if (r->state == "pending" && overdue(*r)) {
        // Its TTL ran out before the periodic sweep saw it.
        if (auto swept = expire_due(); !swept) return store_failed("show", swept.error());
        if (read = store_.request(id); !read) return store_failed("show", read.error());
        r = std::move(*read);
    }
    return request_reply("show", *r);
}

int Workflow::sweep() { return value_or_throw(expire_due()); }

Result<int> Workflow::expire_due() {
    int n = 0;
    auto found = store_.grants_due(clock_.boot_ns());
    if (!found) return err(found.error());
    std::vector<GrantRow> due = std::move(*found);
    // Those whose time left rebase_boot could not know end saying so.
    std::vector<GrantRow> unknown;
    if (!clock_unknown_.empty()) {
        auto is_unknown = [&](const GrantRow& g) {
            return std::find(clock_unknown_.begin(), clock_unknown_.end(), g.id) != clock_unknown_.end();
        };
        std::copy_if(due.begin(), due.end(), std::back_inserter(unknown), is_unknown);
        std::erase_if(due, is_unknown);
        clock_unknown_.clear();
    }
    if (!unknown.empty())
        if (auto ended = end_grants(unknown, "expired", "clock_unknown", nullptr); !ended)
            return err(ended.error());
    if (!due.empty())
        if (auto ended = end_grants(due, "expired", "clock", nullptr); !ended) return err(ended.error());
    n += static_cast<int>(due.size() + unknown.size());
    // By CLOCK_BOOTTIME in this boot; a request of another boot (one
    // rebase_boot has not moved) by the wall clock.
    auto by_boot = store_.requests_due_boot(boot_id_, clock_.boot_ns());
    if (!by_boot) return err(by_boot.error());
    auto by_wall = store_.requests_due(clock_.wall_us());
    if (!by_wall) return err(by_wall.error());
    std::vector<RequestRow> requests = std::move(*by_boot);
    for (auto& r : *by_wall)
        if (r.boot_id != boot_id_) requests.push_back(std::move(r));
    for (auto& r : requests) {
        if (auto closed = close_request(r, "expired", "request_ttl", nullptr,
                                        {{"reason", "the request was not decided in time"}});
            !closed)
            return err(closed.error());
        ++n;
    }
    return n;
}

int Workflow::end_unprotected() {
    int n = 0;
    std::vector<GrantRow> gone;
    value_or_throw(store_.each_grant("active", 1 << 20, [&](GrantRow& g) {
        if (!policy_->find(g.port, g.proto)) gone.push_back(std::move(g));
    }));
    if (!gone.empty()) value_or_throw(end_grants(gone, "revoked", "policy_reload", nullptr));
    n += static_cast<int>(gone.size());
    for (auto& r : value_or_throw(store_.requests("pending", 1 << 20))) {
        if (policy_->find(r.port, r.proto)) continue;
        r.decision_reason = "the port is no longer protected";
        value_or_throw(close_request(r, "rejected", "policy_reload", nullptr,
                                     {{"duration_s", r.duration_s}, {"reason", r.decision_reason}}));
        ++n;
    }
    return n;
}

}  // namespace jg
