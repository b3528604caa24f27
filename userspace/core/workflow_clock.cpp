// The workflow's clocks: what is left of a grant or request made in another
// boot (the wall clock, trusted only where it can be checked), and the
// durations within a boot, by CLOCK_BOOTTIME, which wall-clock steps do not move.
#include <fmt/format.h>

#include <algorithm>

#include "core/clock.h"
#include "core/workflow.h"

namespace jg {

bool Workflow::overdue(const RequestRow& r) {
    return r.boot_id == boot_id_ ? r.deadline_boot_ns <= clock_.boot_ns() : r.deadline_us <= clock_.wall_us();
}

std::int64_t Workflow::used_s(const GrantRow& g) {
    const std::int64_t length_ns = std::max<std::int64_t>(0, g.expires_us - g.start_us) * 1000;
    const std::uint64_t now = clock_.boot_ns();
    const std::int64_t left_ns = g.expires_boot_ns > now ? std::int64_t(g.expires_boot_ns - now) : 0;
    return std::max<std::int64_t>(0, length_ns - left_ns) / 1000000000LL;
}

bool Workflow::rebase_grant(GrantRow& g, std::int64_t now_wall, std::int64_t last_stop) {
    // A warning not written yet stays due as long before the end as it was
    // (at once when that moment has passed): a restart neither repeats nor
    // loses it.
    const std::uint64_t warn_gap =
        g.warn_boot_ns && g.expires_boot_ns > g.warn_boot_ns ? g.expires_boot_ns - g.warn_boot_ns : 0;
    g.warn_boot_ns = 0;
    // A wall clock before the grant began, or before jitgated last stopped,
    // is wrong, by how much nobody knows: the grant ends (fail closed).
    if (now_wall < g.start_us || now_wall < last_stop) {
        g.expires_boot_ns = clock_.boot_ns();
        return false;
    }
    std::int64_t left_us = std::min(g.expires_us - now_wall, g.expires_us - g.start_us);
    if (const PortPolicy* p = policy_->find(g.port, g.proto)) {
        const std::int64_t cap_s =
            g.kind == kBreakGlass ? std::max(p->max_duration_s, p->break_glass_max_s) : p->max_duration_s;
        left_us = std::min(left_us, cap_s * 1000000);
    }
    left_us = std::max<std::int64_t>(0, left_us);
    // Capped: people see the end it now has.
    if (left_us > 0 && left_us < g.expires_us - now_wall) g.expires_us = now_wall + left_us;
    g.expires_boot_ns = clock_.boot_ns() + std::uint64_t(left_us) * 1000ULL;
    if (warn_gap)
        g.warn_boot_ns =
            std::max(clock_.boot_ns(), g.expires_boot_ns - std::min(warn_gap, g.expires_boot_ns));
    return true;
}

std::string Workflow::rebase_boot() {
    const std::int64_t now_wall = clock_.wall_us();
    const std::int64_t last_stop = value_or_throw(store_.meta(kMetaLastStop)).value_or(0);
    struct Moved {
        std::int64_t id;
        std::uint64_t boot_ns;
        std::int64_t expires_us;
        std::uint64_t warn_boot_ns;
    };
    // Only what changes is kept, not the rows: start-up must not hold every grant.
    std::vector<Moved> moved;
    value_or_throw(store_.each_grant("active", kEveryActiveGrant, [&](GrantRow& g) {
        if (g.boot_id == boot_id_) return;
        if (!rebase_grant(g, now_wall, last_stop)) clock_unknown_.push_back(g.id);
        moved.push_back({g.id, g.expires_boot_ns, g.expires_us, g.warn_boot_ns});
    }));
    if (!moved.empty()) {
        Result<bool> done = store_.begin();
        for (std::size_t i = 0; done && i < moved.size(); ++i)
            done = store_.rebase_grant(moved[i].id, boot_id_, moved[i].boot_ns, moved[i].expires_us,
                                       moved[i].warn_boot_ns);
        if (done) done = store_.commit();
        if (!done) store_.abandon();
        value_or_throw(std::move(done));
        next_expiry_.reset();
    }
    int requests_unknown = 0;
    for (auto& r : value_or_throw(store_.requests("pending", 1 << 20))) {
        if (r.boot_id == boot_id_) continue;
        if (now_wall < r.created_us || now_wall < last_stop) {
            value_or_throw(close_request(r, "expired", "clock_unknown", nullptr,
                                         {{"reason",
                                           "the wall clock is earlier than the request or the last stop of "
                                           "jitgated, so the time left to decide it is unknown"}}));
            ++requests_unknown;
            continue;
        }
        const std::int64_t left_us =
            std::max<std::int64_t>(0, std::min(r.deadline_us - now_wall, r.deadline_us - r.created_us));
        if (left_us < r.deadline_us - now_wall) r.deadline_us = now_wall + left_us;
        r.deadline_boot_ns = clock_.boot_ns() + std::uint64_t(left_us) * 1000ULL;
        r.boot_id = boot_id_;
        value_or_throw(store_.put_request(r));
    }
    if (clock_unknown_.empty() && requests_unknown == 0) return {};
    return fmt::format(
        "the wall clock ({}) is earlier than the start of {} grant{} and {} pending request{} of an earlier "
        "boot, or than the last stop of jitgated ({}): the time they have left is unknown, so they end now "
        "(ended_by \"clock_unknown\")",
        rfc3339_us(now_wall), clock_unknown_.size(), clock_unknown_.size() == 1 ? "" : "s", requests_unknown,
        requests_unknown == 1 ? "" : "s", last_stop ? rfc3339_us(last_stop) : std::string("not recorded"));
}

void Workflow::record_stop() { value_or_throw(store_.set_meta(kMetaLastStop, clock_.wall_us())); }

}  // namespace jg
