// What the workflow shows: a request or grant as a reply or a status row,
// the list of pending requests and active grants, one request shown.
#include <fmt/format.h>

#include "core/duration.h"
#include "core/protocol.h"
#include "core/workflow.h"

namespace jg {

namespace {

// list shows the break-glass grants of the last week for review, at most this many.
constexpr std::int64_t kBreakGlassReviewUs = 7LL * 24 * 3600 * 1000000;
constexpr int kBreakGlassReviewMax = 100;

}  // namespace

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
    if (r.extends) j["extends"] = r.extends;
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

}  // namespace jg
