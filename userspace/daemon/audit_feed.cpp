#include "daemon/audit_feed.h"

#include <fmt/format.h>

#include "core/protocol.h"
#include "core/text.h"
#include "daemon/audit_log.h"
#include "util/log.h"

namespace jg {

void ServerOutput::follow(int conn, std::int64_t id) {
    // Lines the follower did not read in time are counted, and the count sent.
    s_.follow(conn, id, [](std::int64_t i, std::uint64_t n) { return reply_dropped(i, n); });
}

std::string AuditFeed::query(const Peer& p, const Caller& c, std::int64_t id, const AuditArgs& a) {
    const AuditFilter& f = a.filter;
    const bool follow = a.follow;
    const std::int64_t limit = a.limit;
    const std::string& user = c.user;  // looked up for this request: a uid can change hands
    const bool all = sees_all_(c);
    if (follow)
        if (auto why = too_many_streams(c.uid, all); !why.empty())
            return reply_error(id, code::kRefused, why);
    // Reading history costs the daemon a scan of the log: a user who sees
    // only their own records gets a few scans a second.
    if (!all && limit > 0)
        if (auto why = over_budget(c.uid); !why.empty()) return reply_error(id, code::kRefused, why);
    auto keep = [&](const json& r) { return matches(f, r) && (all || belongs_to(r, c.uid, user)); };
    bool more = false;
    std::string out;
    // A caller who sees only their own records scans less, and only lines
    // that name them are parsed.
    std::vector<std::string> hints;
    if (!all) hints = {json_text(json(user)), fmt::format("\"uid\":{}", c.uid)};
    const std::size_t scan = all ? AuditLog::kMaxScanBytes : AuditLog::kMaxScanBytes / 4;
    bool newer = false;
    // Resuming after a seq: the oldest records after it; the stream follows
    // only once nothing is left between them and now (else the caller asks again).
    std::size_t scanned = 0;
    std::uint64_t oldest = 0;
    const auto history =
        a.after_seq ? log_.after(keep, *a.after_seq, std::size_t(limit), &newer, &more, hints, scan, &scanned,
                                 &oldest)
                    : log_.recent(keep, std::size_t(limit), f.since_us, &more, hints, scan, &scanned);
    if (!all) charge_scan(scanned);
    const bool following = follow && !newer;
    for (const auto& r : history) out += reply_event(id, r);
    json result = {{"count", history.size()}, {"following", following}, {"scope", all ? "all" : "own"}};
    if (a.after_seq) {
        result["newer"] = newer;
        result["missing"] = more;
        // Where the file's records begin again: a follower that recorded the
        // gap goes on from there, not from the gap again.
        if (more && oldest > 0) result["resume_after"] = oldest - 1;
        if (more)
            result["note"] = fmt::format(
                "records after seq {} are further back than jitgated reads ({} MiB) or in a rotated "
                "file; read them from the log files",
                *a.after_seq, scan >> 20);
    } else if (more)
        result["note"] = fmt::format(
            "older records are further back than this query reads ({} MiB); read "
            "the log file {}",
            scan >> 20, log_.path());
    out += reply_ok(id, result);
    if (following && out_) {
        out_->follow(p.conn, id);
        followers_[p.conn] = Follower{id, f, all, c};
    }
    return out;
}

std::string AuditFeed::too_many_streams(std::uint32_t uid, bool all) const {
    std::size_t mine = 0, pool = 0;
    for (const auto& [conn, fl] : followers_) {
        mine += fl.who.uid == uid ? 1 : 0;
        pool += fl.all == all ? 1 : 0;
    }
    // Two pools: streams of those who see everything (root, auditors: the
    // notifier among them) never wait for room that other users took (a
    // range of subordinate uids could take every place).
    if (pool < kMaxFollowers && (uid == 0 || mine < kMaxFollowersPerUid)) return {};
    return fmt::format(
        "too many audit streams open ({} for you, {} in all for {}; at most {} per user): close one and "
        "try again",
        mine, pool, all ? "auditors" : "users who see their own records", kMaxFollowersPerUid);
}

std::string AuditFeed::over_budget(std::uint32_t uid) {
    constexpr std::uint64_t kSecondNs = 1000000000;
    const std::uint64_t now = clock_.boot_ns();
    // One budget of bytes read for everyone who sees only their own records:
    // many accounts (a range of subordinate uids) at 5 queries a second each
    // would otherwise keep the daemon reading its log, and nothing else.
    if (scan_budget_.first == 0 || now - scan_budget_.first >= kSecondNs) scan_budget_ = {now, 0};
    if (scan_budget_.second >= kScanBytesPerSecond)
        return fmt::format(
            "jitgated has read {} MiB of its log for such queries this second; try again in a moment",
            kScanBytesPerSecond >> 20);
    auto& b = query_budget_[uid];
    if (b.first == 0 || now - b.first >= kSecondNs) b = {now, 0};
    if (++b.second > kQueriesPerSecond)
        return fmt::format("more than {} audit queries in a second; try again in a moment",
                           kQueriesPerSecond);
    if (query_budget_.size() > 4096) query_budget_.clear();
    return {};
}

void AuditFeed::charge_scan(std::size_t bytes) { scan_budget_.second += bytes; }

void AuditFeed::set_output(FeedOutput* out) {
    out_ = out;
    if (!out_) followers_.clear();
}

void AuditFeed::on_record(const json& r) {
    if (!out_) return;
    for (const auto& [conn, fl] : followers_)
        if (matches(fl.filter, r) && (fl.all || belongs_to(r, fl.who.uid, fl.who.user)))
            out_->push(conn, reply_event(fl.id, r));
}

void AuditFeed::recheck_followers() {
    for (auto& [conn, fl] : followers_) {
        if (!fl.all) continue;
        fl.all = sees_all_(fl.who);
        if (!fl.all)
            log(fmt::format(
                "uid {} is no longer an auditor: its audit stream now carries only its own records",
                fl.who.uid));
    }
}

void AuditFeed::policy_changed() {
    for (auto& [conn, fl] : followers_) fl.all = sees_all_(fl.who);
}

}  // namespace jg
