// What bounds the rows one user can make jitgated keep (issue 16, item 7):
// the request rate, the caps on pending requests, the free space, the
// retention of decided rows, and list's pages.
#include <fmt/format.h>

#include <type_traits>

#include "core/duration.h"
#include "core/protocol.h"
#include "core/workflow.h"

namespace jg {

namespace {

// A caller who may not see everything: rows are read in batches and judged
// one by one, at most kScopedScanMax of a section (the newest).
constexpr std::int64_t kScopedBatch = 500;
constexpr std::int64_t kScopedScanMax = 100000;

}  // namespace

std::optional<Reply> Workflow::admit(const Caller& c, const PortPolicy& p, std::uint16_t port, Proto proto) {
    if (space_check_)
        if (auto why = space_check_()) return Reply::fail(code::kCapacity, *why);
    // Root administers the host and is not the one who floods it.
    if (c.uid == 0) return std::nullopt;
    const RequestLimits& l = policy_->daemon.limits;
    std::int64_t wait_s = 0;
    if (!rate_.take(c.uid, clock_.boot_ns(), l.rate_burst, l.rate_period_s, &wait_s))
        return Reply::fail(code::kRefused,
                           fmt::format("too many requests: at most {} per user ([daemon] request_rate); try "
                                       "again in {}",
                                       format_rate(l.rate_burst, l.rate_period_s), format_duration(wait_s)));
    if (const auto n = store_.count_pending(c.uid, port, proto); n >= l.max_pending_per_port)
        return Reply::fail(code::kRefused,
                           fmt::format("you already have {} pending requests for port '{}', the most "
                                       "[daemon] max_pending_per_port allows: wait for them to be decided or "
                                       "withdraw one (jitgate deny ID)",
                                       n, p.name));
    if (const auto n = store_.count_pending(c.uid); n >= l.max_pending_per_user)
        return Reply::fail(code::kRefused,
                           fmt::format("you already have {} pending requests, the most [daemon] "
                                       "max_pending_per_user allows: wait for them to be decided or "
                                       "withdraw one (jitgate deny ID)",
                                       n));
    return std::nullopt;
}

int Workflow::prune(int max_rows) {
    const std::int64_t keep_s = policy_->daemon.limits.retention_s;
    if (keep_s <= 0) return 0;
    return store_.prune(clock_.wall_us() - keep_s * 1000000, max_rows);
}

void Workflow::list_page(const Caller& c, const ListArgs& a, json& out) {
    const std::string& f = a.filter;
    const std::int64_t limit = a.limit;
    const std::int64_t after = a.after;
    out["filter"] = f;
    out["limit"] = limit;
    out["total"] = json::object();
    out["more"] = json::object();
    out["next_after"] = json::object();
    const bool all = sees_all(c);
    ApproverCache approver_of;
    auto to_json = [&](const auto& x) {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, RequestRow>)
            return request_json(x);
        else
            return grant_json(x);
    };
    // Each section: at most `limit` rows below `after`, newest first, and how
    // many more follow the last one shown.
    auto page = [&](const char* section, auto rows, auto count, const char* state) {
        const std::string st = f == "all" ? "all" : state;
        if (all) {
            auto items = (store_.*rows)(st, after, int(limit));
            std::int64_t more = 0;
            for (auto& x : items) out[section].push_back(to_json(x));
            if (!items.empty() && std::int64_t(items.size()) == limit) {
                more = (store_.*count)(st, items.back().id);
                if (more) out["next_after"][section] = items.back().id;
            }
            out["total"][section] = (store_.*count)(st, 0);
            out["more"][section] = more;
            return;
        }
        // Scoped as audit is: only rows that concern c are shown or counted,
        // so totals say nothing of other users' rows.  One pass over the
        // section, newest first, in batches, bounded by kScopedScanMax.
        std::int64_t total = 0, shown = 0, more = 0, last_shown = 0, cursor = 0, scanned = 0;
        for (;;) {
            auto batch = (store_.*rows)(st, cursor, int(kScopedBatch));
            for (auto& x : batch) {
                json row = to_json(x);
                if (!concerns(c, row, &approver_of)) continue;
                ++total;
                if (after > 0 && x.id >= after) continue;
                if (shown < limit) {
                    out[section].push_back(std::move(row));
                    last_shown = x.id;
                    ++shown;
                } else {
                    ++more;
                }
            }
            scanned += std::int64_t(batch.size());
            if (std::int64_t(batch.size()) < kScopedBatch || scanned >= kScopedScanMax) break;
            cursor = batch.back().id;
        }
        if (more) out["next_after"][section] = last_shown;
        out["total"][section] = total;
        out["more"][section] = more;
    };
    if (f == "pending" || f == "default" || f == "all")
        page("requests", &Store::requests_before, &Store::count_requests_before, "pending");
    if (f == "active" || f == "default" || f == "all")
        page("grants", &Store::grants_before, &Store::count_grants_before, "active");
}

}  // namespace jg
