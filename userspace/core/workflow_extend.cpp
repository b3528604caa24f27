// More time on a grant, and the warning before it ends (design.md §9).
// An extension is a request whose `extends` names the grant: asked by the
// holder, decided by the port's approvers as any request (approve, deny,
// auto_approve), and capped by max_duration counted from the grant's start,
// so that extensions never make a grant longer than one request could.
// On approval the grant keeps its id, key and connections; only its end
// moves, in the store, in its map entry (updated in place) and in the timers.
#include <fmt/format.h>

#include <algorithm>

#include "core/clock.h"
#include "core/duration.h"
#include "core/kernel_grant.h"
#include "core/protocol.h"
#include "core/workflow.h"

namespace jg {

namespace {

// Seconds grant g lasts from its start to its current end.
std::int64_t length_s(const GrantRow& g) {
    return std::max<std::int64_t>(0, g.expires_us - g.start_us) / 1000000;
}

}  // namespace

std::uint64_t Workflow::warn_at(const GrantRow& g) {
    const PortPolicy* p = policy_->find(g.port, g.proto);
    if (!p || p->warn_before_s <= 0) return 0;
    const std::uint64_t before = std::uint64_t(p->warn_before_s) * 1000000000ULL;
    // A grant that ends within warn_before of being made (or extended) gets
    // no warning: its grant (or extend) record already says when it ends.
    if (g.expires_boot_ns <= clock_.boot_ns() + before) return 0;
    return g.expires_boot_ns - before;
}

int Workflow::warn_expiring(int max_grants) {
    const std::uint64_t now = clock_.boot_ns();
    auto due = value_or_throw(store_.grants_to_warn(boot_id_, now, max_grants));
    int n = 0;
    for (const GrantRow& g : due) {
        // Ending now: its expire record is the news.
        if (g.expires_boot_ns <= now) continue;
        json ev = grant_event("expiry_warning", g, nullptr);
        ev.update({{"requester", g.user},
                   {"reason", g.reason},
                   {"expires_at", rfc3339_us(g.expires_us)},
                   {"remaining_s", remaining_s(g)}});
        if (!g.ticket.empty()) ev["ticket"] = g.ticket;
        audit_.emit(ev);
        // Written before it is marked: a crash between the two repeats one
        // warning rather than losing it; one not written is tried again.
        if (!audit_.flush()) return n;
        value_or_throw(store_.set_warned(g.id));
        ++n;
    }
    return n;
}

Reply Workflow::extend(const Caller& c, const ExtendArgs& a) {
    auto read = store_.grant(a.id);
    if (!read) return store_failed("extend", read.error());
    std::optional<GrantRow> g = std::move(*read);
    if (!g) {
        // The id of the request that led to the grant (or of an extension of it).
        auto req = store_.request(a.id);
        if (!req) return store_failed("extend", req.error());
        if (const auto& r = *req) {
            const std::int64_t gid = r->extends ? r->extends : r->grant_id;
            if (!gid)
                return Reply::fail(code::kConflict, fmt::format("request {} is {} and has no grant to extend",
                                                                a.id, r->state));
            if (read = store_.grant(gid); !read) return store_failed("extend", read.error());
            g = std::move(*read);
        }
    }
    if (!g) return Reply::fail(code::kNotFound, fmt::format("there is no grant or request {}", a.id));
    if (c.uid != g->uid)
        return Reply::fail(
            code::kForbidden,
            fmt::format("only the holder of grant {} ({}) can ask to extend it", g->id, g->user));
    if (g->state != "active")
        return Reply::fail(
            code::kConflict,
            fmt::format("grant {} has already ended ({}): ask for new access with jitgate request", g->id,
                        g->state));
    const PortPolicy* p = policy_->find(g->port, g->proto);
    if (!p)
        return Reply::fail(code::kRefused,
                           fmt::format("port {}/{} is no longer protected, so grant {} cannot "
                                       "be extended",
                                       g->port, proto_name(g->proto), g->id));
    const std::int64_t room = p->max_duration_s - length_s(*g);
    if (a.duration_s > room)
        return Reply::fail(
            code::kRefused,
            room <= 0 ? fmt::format("grant {} already lasts {} from its start, the most port '{}' allows "
                                    "(max_duration): ask for new access with jitgate request when it ends",
                                    g->id, format_duration(length_s(*g)), p->name)
                      : fmt::format("{} more would make grant {} last longer than port '{}' allows from its "
                                    "start ({}): ask for {} or less",
                                    format_duration(a.duration_s), g->id, p->name,
                                    format_duration(p->max_duration_s), format_duration(room)));
    RequestRow r;
    r.port = g->port;
    r.proto = g->proto;
    r.duration_s = a.duration_s;
    r.reason = a.reason.find_first_not_of(' ') == std::string::npos ? g->reason : a.reason;
    if (p->require_reason && r.reason.find_first_not_of(' ') == std::string::npos)
        return Reply::fail(code::kRefused,
                           fmt::format("port '{}' requires a reason (--reason TEXT)", p->name));
    if (auto refused = admit(c, *p, g->port, g->proto)) return *refused;

    if (auto started = start_request(r, c); !started) return store_failed("extend", started.error());
    r.ticket = g->ticket;
    r.src = g->src;
    r.extends = g->id;
    r.deadline_us = r.created_us + p->request_ttl_s * 1000000;
    r.deadline_boot_ns += std::uint64_t(p->request_ttl_s) * 1000000000ULL;
    if (auto put = store_.put_request(r); !put) return store_failed("extend", put.error());

    json ev = base_event("request", &c);
    put_request_fields(ev, r);
    ev.update({{"duration_s", r.duration_s}, {"reason", r.reason}});
    if (!r.ticket.empty()) ev["ticket"] = r.ticket;
    audit_.emit(ev);

    // An auto_approve rule grants what it would grant one request: a
    // grant as long as the extended one, from its start.
    for (const auto& rule : p->auto_approve) {
        if (matches(c, rule.who) && length_s(*g) + r.duration_s <= rule.max_duration_s) {
            r.approvers.push_back("auto_approve:" + rule.who.text());
            return extend_grant(r, r.duration_s, "auto_approve:" + rule.who.text());
        }
    }
    return request_reply("extend", r);
}

Reply Workflow::refuse_extension(RequestRow& r, const char* op, const std::string& by,
                                 const std::string& why) {
    r.decision_reason = why;
    if (auto closed = close_request(r, "rejected", by, nullptr,
                                    {{"duration_s", r.duration_s}, {"reason", r.decision_reason}});
        !closed)
        return store_failed(op, closed.error());
    return Reply::fail(code::kConflict, fmt::format("request {} was rejected: {}", r.id, why));
}

Reply Workflow::extend_grant(RequestRow& r, std::int64_t duration_s, const std::string& by) {
    const char* op = by.rfind("auto_approve:", 0) == 0 ? "extend" : "approve";
    // As for a grant: the decision is in the log before it takes effect.
    if (!audit_.flush())
        return Reply::fail(code::kInternal,
                           "jitgated cannot write its audit log and is stopping: nothing was extended");
    auto read = store_.grant(r.extends);
    if (!read) return store_failed(op, read.error());
    std::optional<GrantRow> g = std::move(*read);
    // Past its kernel deadline it has ended, whatever the store says until
    // the sweep marks it: an extension must not bring it back.
    if (g && g->state == "active" && g->expires_boot_ns <= clock_.boot_ns()) g->state = "expired";
    if (!g || g->state != "active")
        return refuse_extension(
            r, op, by,
            fmt::format("grant {} ended before its extension was decided ({}): ask for new "
                        "access with jitgate request",
                        r.extends, g ? g->state : "deleted"));
    // The policy may have changed since it was asked.
    if (const PortPolicy* p = policy_->find(g->port, g->proto))
        duration_s = std::min(duration_s, p->max_duration_s - length_s(*g));
    if (duration_s <= 0)
        return refuse_extension(
            r, op, by, fmt::format("grant {} already lasts the most its port allows from its start", g->id));
    const GrantRow before = *g;
    g->expires_us += duration_s * 1000000;
    g->expires_boot_ns += std::uint64_t(duration_s) * 1000000000ULL;
    g->warn_boot_ns = warn_at(*g);
    r.state = "granted";
    r.grant_id = g->id;
    r.decided_us = clock_.wall_us();
    r.decided_by = by;
    Result<bool> done = store_.begin();
    if (done) done = put_grant(*g);
    if (done) done = store_.put_request(r);
    if (done) done = store_.commit();
    if (!done) return store_failed(op, done.error());

    // Persisted first; now the kernel: the entry under the same key is
    // updated in place, never removed, so no packet finds it missing.
    const auto kg = kernel_grant(*g);
    if (auto put = kg ? sink_.put(*kg) : Result<bool>(err(kg.error())); !put) {
        r.state = "pending";
        r.grant_id = 0;
        Result<bool> undone = store_.begin();
        if (undone) undone = put_grant(before);
        if (undone) undone = store_.commit();
        if (!undone) return store_failed(op, undone.error());
        // The map may hold the old entry or nothing it could not write: the old end stands.
        if (const auto old = kernel_grant(before)) sink_.put(*old);
        return refuse_extension(r, op, by, put.error());
    }
    json ev = grant_event("extend", *g, nullptr);
    ev.update({{"request_id", r.id},
               {"requester", r.user},
               {"approvers", r.approvers},
               {"reason", r.reason},
               {"duration_s", duration_s},
               {"old_expires_at", rfc3339_us(before.expires_us)},
               {"expires_at", rfc3339_us(g->expires_us)}});
    if (!r.ticket.empty()) ev["ticket"] = r.ticket;
    audit_.emit(ev);
    return request_reply(op, r);
}

Result<bool> Workflow::move_fleet_end(const GrantRow& applied, std::int64_t expires_us) {
    const std::uint64_t now = clock_.boot_ns();
    // Past its kernel deadline it has ended here, whatever the store says
    // until the sweep marks it (as extend_grant decides on a single host).
    if (applied.state != "active" || applied.expires_boot_ns <= now)
        return err(fmt::format("grant {} ended on this node before its new end arrived", applied.id));
    // The end moves on the deadline this node already keeps, by as much as
    // it moved in the document: a wall-clock step since the grant was applied
    // (NTP) moves neither the old time left nor the extension.
    const std::int64_t delta_us = expires_us - applied.expires_us;
    if (delta_us > kMaxDurationSeconds * 1'000'000 || delta_us < -kMaxDurationSeconds * 1'000'000)
        return err(fmt::format("grant {}'s new end moves it by more than a year", applied.id));
    std::int64_t next_ns = static_cast<std::int64_t>(applied.expires_boot_ns) + delta_us * 1000;
    // An end moved back past now ends the grant here now (fail closed), as a
    // smaller move back would; the sweep records its end.
    if (next_ns <= static_cast<std::int64_t>(now)) next_ns = static_cast<std::int64_t>(now);
    GrantRow g = applied;
    g.expires_us = expires_us;
    g.expires_boot_ns = static_cast<std::uint64_t>(next_ns);
    g.warn_boot_ns = warn_at(g);
    if (auto put = put_grant(g); !put) return put;
    // The entry under the same key is updated in place, never removed, so
    // no packet finds it missing and no connection is cut.
    const auto kg = kernel_grant(g);
    if (auto put = kg ? sink_.put(*kg) : Result<bool>(err(kg.error())); !put) {
        // The old end stands, in the store and (rewritten) in the map.
        if (auto back = put_grant(applied); !back) return back;
        if (const auto old = kernel_grant(applied)) sink_.put(*old);
        return err(put.error());
    }
    return true;
}

}  // namespace jg
