#pragma once
// `jitgate audit`: who may read which records of the audit log, the
// history queries and their budget, and the followers (audit --follow), to
// whom each record written goes as it is written.  Root and auditors see
// every record; anyone else only their own (core/audit.h belongs_to).
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/audit.h"
#include "core/clock.h"
#include "core/operations.h"
#include "core/workflow.h"
#include "daemon/server.h"

namespace jg {

class AuditLog;

// Where the followers' lines go: the control socket's server (a fake in tests).
class FeedOutput {
public:
    virtual ~FeedOutput() = default;
    // Connection `conn` becomes a stream of the records of request `id`.
    virtual void follow(int conn, std::int64_t id) = 0;
    virtual void push(int conn, const std::string& line) = 0;
};

// FeedOutput through the control socket's server.
class ServerOutput : public FeedOutput {
public:
    explicit ServerOutput(Server& s) : s_(s) {}
    void follow(int conn, std::int64_t id) override;
    void push(int conn, const std::string& line) override { s_.push(conn, line); }

private:
    Server& s_;
};

class AuditFeed {
public:
    static constexpr std::size_t kMaxFollowers = 256;      // of each kind: auditors', and everyone else's
    static constexpr std::size_t kMaxFollowersPerUid = 4;  // root has no such limit
    static constexpr int kQueriesPerSecond = 5;            // for those who see only their own
    // Bytes of the log read for them a second, all of them together (a query
    // already begun reads on: at most AuditLog::kMaxScanBytes / 4 more).
    static constexpr std::size_t kScanBytesPerSecond = 64u << 20;

    // Whether the caller may read every record (root, an auditor; a token's
    // user by the token's groups, not the host's): asked each time.
    using SeesAll = std::function<bool(const Caller& c)>;
    AuditFeed(AuditLog& log, Clock& clock, SeesAll sees_all)
        : log_(log), clock_(clock), sees_all_(std::move(sees_all)) {}

    // The "audit" operation: the recent records this caller may see that
    // match the filters, oldest first, each as an event line; then the
    // result line; and, when following, every new matching record as it is
    // written.  Returns the reply lines.
    // `p`: the connection; `c`: who asks (a token's user, not the peer
    // presenting the token).
    std::string query(const Peer& p, const Caller& c, std::int64_t id, const AuditArgs& args);

    // The server streams go to; nullptr: none (before start, after stop,
    // which also forgets every follower).
    void set_output(FeedOutput* out);
    // Whether anyone follows: records are handed to on_record only then.
    bool listening() const { return out_ && !followers_.empty(); }
    // A record written (sealed), to the followers it concerns.
    void on_record(const json& record);
    // A connection closed: it follows no more.
    void closed(int conn) { followers_.erase(conn); }
    // At each tick: an auditor removed from [daemon] auditors or from its
    // @group keeps the stream open, but from now on it carries only the
    // follower's own records.  Said in the log.
    void recheck_followers();
    // After a reload: who may read everything follows the new policy.
    void policy_changed();
    std::size_t followers() const { return followers_.size(); }

private:
    struct Follower {
        std::int64_t id = 0;
        AuditFilter filter;
        bool all = false;  // root or an auditor: every record; else the caller's own
        Caller who;        // as it asked (a token's groups with it)
    };
    // The refusal when `uid` may not open one more stream (`all`: one that
    // carries every record); empty when it may.
    std::string too_many_streams(std::uint32_t uid, bool all) const;
    // The refusal when `uid` has used this second's queries; empty when not.
    std::string over_budget(std::uint32_t uid);
    void charge_scan(std::size_t bytes);

    AuditLog& log_;
    Clock& clock_;
    SeesAll sees_all_;
    FeedOutput* out_ = nullptr;
    std::map<int, Follower> followers_;  // by connection
    std::map<std::uint32_t, std::pair<std::uint64_t, int>>
        query_budget_;                                         // uid: second began (boot ns), used
    std::pair<std::uint64_t, std::size_t> scan_budget_{0, 0};  // second began (boot ns), bytes read
};

}  // namespace jg
