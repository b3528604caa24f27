// How grants and requests end: revoked, expired by the clock or by their
// TTL, ended with the policy that protected their port.  The kernel's maps
// lose the grant first; then its TCP connections are cut and counted.
#include <fmt/format.h>

#include <algorithm>

#include "core/kernel_grant.h"
#include "core/workflow.h"

namespace jg {

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
                                  const Caller* actor, const char* type, const Decorate& decorate) {
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
        json ev = grant_event(type ? type : state == "revoked" ? "revoke" : "expire", g, actor);
        ev.update({{"requester", g.user},
                   {"approvers", g.approvers},
                   {"reason", g.reason},
                   {"duration_s", (g.expires_us - g.start_us) / 1000000},
                   {"used_s", used_s(g)},
                   {"ended_by", by}});
        if (!g.ticket.empty()) ev["ticket"] = g.ticket;
        if (g.kind == kBreakGlass) ev["break_glass"] = true;
        if (g.proto == Proto::Tcp) ev["connections_ended"] = counts[i];
        if (decorate) decorate(g, ev);
        audit_.emit(ev);
    }
    return true;
}

Result<bool> Workflow::apply_fleet_grant(const GrantRow& applied) {
    // Each node warns of the end of the grants it applied, by its own policy.
    GrantRow g = applied;
    g.warn_boot_ns = warn_at(g);
    if (auto put = put_grant(g); !put) return put;
    auto kg = kernel_grant(g);
    if (!kg) return err(kg.error());
    auto in = sink_.put(*kg);
    if (in) return true;
    GrantRow ended = g;
    ended.state = "revoked";
    ended.ended_us = clock_.wall_us();
    ended.ended_by = "map_full";
    if (auto put = put_grant(ended); !put) return put;
    return err(in.error());
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
    value_or_throw(store_.each_grant("active", kEveryActiveGrant, [&](GrantRow& g) {
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
