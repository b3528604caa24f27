#include "daemon/kernel_sync.h"

#include <fmt/format.h>
#include <time.h>

#include <chrono>
#include <vector>

#include "core/kernel_grant.h"
#include "core/progress.h"
#include "daemon/netlink.h"
#include "util/log.h"

namespace jg {

void KernelSync::sync_local_addrs() {
    k_->local_addrs().sync_addrs(current_addresses());
    // Prefixes routed here without an interface address (AnyIP, anycast).
    const auto routes = current_local_routes();
    if (!routes) {
        // A partial dump would drop AnyIP prefixes and let local users reach
        // them as if remote: keep the map as it is; the next change retries.
        if (!routes_retry_)
            log("cannot read the local routes (rtnetlink dump incomplete); keeping the last known ones and "
                "trying again each second");
        routes_retry_ = true;
        return;
    }
    routes_retry_ = false;
    k_->local_addrs().sync_nets(*routes);
}

Result<bool> KernelSync::reconcile_grants(Store& store) {
    // Read row by row (a cursor), keeping only what the kernel holds (a
    // KernelGrant, not the row's texts).  Many grants take a while to
    // write: say how far it got, once a second.
    auto now_ms = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
    };
    auto count = store.count_grants("active");
    if (!count) return err(count.error());
    Progress progress("restoring grants", std::uint64_t(*count), now_ms());
    std::vector<KernelGrant> active;
    auto read = store.each_grant("active", kEveryActiveGrant, [&](const GrantRow& g) {
        if (auto kg = kernel_grant(g))
            active.push_back(*kg);
        else
            log(kg.error());
    });
    if (!read) return err(read.error());
    const Reconciled r = k_->grants().reconcile(active, [&](std::uint64_t n) {
        if (auto line = progress.step(n, now_ms())) log(*line);
    });
    for (const auto& e : r.errors) log(e);
    if (!active.empty())
        log(fmt::format("restored {} active grant{} into the maps in {} ms", active.size(),
                        active.size() == 1 ? "" : "s", progress.elapsed_ms(now_ms())));
    for (const ForeignGrant& f : r.removed)
        tamper_({{"principal", f.principal},
                 {"port", f.port},
                 {"proto", std::string(proto_name(f.proto))},
                 {"grant_id", f.grant_id},
                 {"reason", "a grant map held an entry the state store does not know; removed"}});
    return true;
}

void KernelSync::refresh_bloom() {
    if (auto r = k_->grants().refresh_bloom(); !r) log(r.error());
}

// Decisions counted by the kernel's rate limits after their last event, for
// principals that then went quiet: the next decision would have carried the
// count, so without this it would never be reported.  Every window idle for
// a second goes, with or without a count: the tables are not LRU (an evicted
// window would take its count with it), so they must not fill with old ones.
void KernelSync::close_idle_windows() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // the programs' clock
    const std::uint64_t now = std::uint64_t(ts.tv_sec) * 1000000000ull + std::uint64_t(ts.tv_nsec);
    const ClosedWindows closed = k_->windows().close_idle(now);
    for (const ClosedWindow& w : closed.deny) records_.on_closed(w);
    // The new flows after the window's recorded one: this record stands for
    // them (count), so the counts of allow records sum to the kernel's allow
    // counter.
    for (const ClosedWindow& w : closed.allow) records_.on_closed(w);
}

}  // namespace jg
