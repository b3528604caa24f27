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
    if (!rate_->take(c.uid, clock_.boot_ns(), l.rate_burst, l.rate_period_s, &wait_s))
        return Reply::fail(code::kRefused,
                           fmt::format("too many requests: at most {} per user ([daemon] request_rate); try "
                                       "again in {}",
                                       format_rate(l.rate_burst, l.rate_period_s), format_duration(wait_s)));
    const auto on_port = store_.count_pending(c.uid, port, proto);
    if (!on_port) return store_failed("request", on_port.error());
    if (const auto n = *on_port; n >= l.max_pending_per_port)
        return Reply::fail(code::kRefused,
                           fmt::format("you already have {} pending requests for port '{}', the most "
                                       "[daemon] max_pending_per_port allows: wait for them to be decided or "
                                       "withdraw one (jitgate deny ID)",
                                       n, p.name));
    const auto of_user = store_.count_pending(c.uid);
    if (!of_user) return store_failed("request", of_user.error());
    if (const auto n = *of_user; n >= l.max_pending_per_user)
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
    return value_or_throw(store_.prune(clock_.wall_us() - keep_s * 1000000, max_rows));
}

std::optional<Reply> Workflow::list_page(const Caller& c, const ListArgs& a, json& out) {
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
    auto to_json = [&](const auto& x) -> Result<json> {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, RequestRow>)
            return request_view(x);
        else
            return grant_json(x);
    };
    // Each section: at most `limit` rows below `after`, newest first, and how
    // many more follow the last one shown.  The store's error, if any.
    auto page = [&](const char* section, auto rows, auto count, const char* state) -> Result<bool> {
        const std::string st = f == "all" ? "all" : state;
        if (all) {
            auto items = (store_.*rows)(st, after, int(limit));
            if (!items) return err(items.error());
            std::int64_t more = 0;
            for (auto& x : *items) {
                auto row = to_json(x);
                if (!row) return err(row.error());
                out[section].push_back(std::move(*row));
            }
            if (!items->empty() && std::int64_t(items->size()) == limit) {
                auto after_last = (store_.*count)(st, items->back().id);
                if (!after_last) return err(after_last.error());
                more = *after_last;
                if (more) out["next_after"][section] = items->back().id;
            }
            auto total = (store_.*count)(st, 0);
            if (!total) return err(total.error());
            out["total"][section] = *total;
            out["more"][section] = more;
            return true;
        }
        // Scoped as audit is: only rows that concern c are shown or counted,
        // so totals say nothing of other users' rows.  One pass over the
        // section, newest first, in batches, bounded by kScopedScanMax.
        std::int64_t total = 0, shown = 0, more = 0, last_shown = 0, cursor = 0, scanned = 0;
        for (;;) {
            auto read = (store_.*rows)(st, cursor, int(kScopedBatch));
            if (!read) return err(read.error());
            const auto& batch = *read;
            for (auto& x : batch) {
                auto view = to_json(x);
                if (!view) return err(view.error());
                json row = std::move(*view);
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
        return true;
    };
    if (f == "pending" || f == "default" || f == "all")
        if (auto paged = page("requests", &Store::requests_before, &Store::count_requests_before, "pending");
            !paged)
            return store_failed("list", paged.error());
    if (f == "active" || f == "default" || f == "all")
        if (auto paged = page("grants", &Store::grants_before, &Store::count_grants_before, "active"); !paged)
            return store_failed("list", paged.error());
    return std::nullopt;
}

}  // namespace jg
