#pragma once
// Requests and grants, persisted in SQLite (WAL) before they reach a map.
#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/keys.h"
#include "core/result.h"

namespace jg {

// RequestRow::kind and GrantRow::kind of a break-glass request and its grant.
inline constexpr const char* kBreakGlass = "break_glass";

// An approver uid a request does not know: an approval recorded before
// approvers' uids were kept (schema 3), which cannot be checked, so it lapses
// at the last approval.
constexpr std::uint32_t kNoUid = std::numeric_limits<std::uint32_t>::max();

struct RequestRow {
    std::int64_t id = 0;
    std::uint32_t uid = 0;
    std::string user;
    std::uint16_t port = 0;
    Proto proto = Proto::Tcp;
    std::int64_t duration_s = 0;
    std::string reason;
    std::string ticket;
    std::string state;  // pending | granted | rejected | expired
    std::int64_t created_us = 0;
    std::int64_t deadline_us = 0;  // a pending request expires at this wall time
    std::int64_t decided_us = 0;
    std::string decided_by;  // who rejected, or "ttl"
    std::string decision_reason;
    std::int64_t grant_id = 0;
    std::vector<std::string> approvers;  // distinct, in order of approval
    std::int64_t shortest_s = 0;         // shortest duration an approver gave; 0 = none
    std::string src;                     // remote principal, format_source() text; empty = the local user uid
    std::string kind;                    // "" (asked for) or kBreakGlass
    // Schema 4: the uid of each approver (parallel to approvers; shorter in
    // rows from before, whose approvals then cannot be checked and lapse),
    // and the TTL by CLOCK_BOOTTIME of boot `boot_id` (wall-clock steps do
    // not move it; a request from another boot is re-based at start).
    std::vector<std::uint32_t> approver_uids;  // kNoUid: not known (rows from before schema 4)
    std::uint64_t deadline_boot_ns = 0;
    std::string boot_id;
    // Schema 5: an extension (jitgate extend) asks for more time on this
    // grant, rather than for a grant of its own; 0 = a request for a grant.
    std::int64_t extends = 0;
    // Schema 6: for each approver (parallel to approvers), the approver
    // groups of the port an ID token put them in, when they approved with
    // one (nullopt: over the socket, as the host account).  The recheck of
    // earlier approvals counts those groups, not the host's, which a
    // token's user may not be in.
    std::vector<std::optional<std::vector<std::string>>> approver_token_groups;
};

struct GrantRow {
    std::int64_t id = 0;
    std::int64_t request_id = 0;
    std::uint32_t uid = 0;
    std::string user;
    std::uint16_t port = 0;
    Proto proto = Proto::Tcp;
    std::int64_t start_us = 0;
    std::int64_t expires_us = 0;        // wall clock, for people
    std::uint64_t expires_boot_ns = 0;  // CLOCK_BOOTTIME, what the kernel checks
    std::string boot_id;                // boot the boottime refers to
    std::string state;                  // active | expired | revoked | replaced
    std::int64_t ended_us = 0;
    std::string ended_by;
    std::string reason;
    std::string ticket;
    std::vector<std::string> approvers;
    std::string src;   // remote principal, format_source() text; empty = the local user uid
    std::string kind;  // "" (approved or auto-approved) or kBreakGlass
    // Schema 5: CLOCK_BOOTTIME (of boot_id) at which its expiry_warning is
    // due; 0 = none due (written already, or warn_before does not apply).
    std::uint64_t warn_boot_ns = 0;
};

// Prepared statements kept for the life of a connection, by their SQL:
// preparing one costs more than running it.
struct StmtCache {
    sqlite3* db = nullptr;
    std::unordered_map<std::string, sqlite3_stmt*> stmts;
    sqlite3_stmt* get(const std::string& sql);  // nullptr when it is in use
    void clear();                               // finalizes them all
};

// Every method but open() reports an SQLite error as its Result (the
// statement's message, e.g. "sqlite step: disk I/O error"); nothing throws
// out of a Store.  A failed write inside begin()..commit() leaves the
// transaction for the caller to abandon().
class Store;

// The value of a store result, or its error thrown as std::runtime_error:
// for the daemon's own use of the store (start-up, the tick, status,
// metrics), where a broken store stops the daemon as before.  A client's
// request gets a failed Reply instead (Workflow::store_failed).
template <typename T>
T value_or_throw(Result<T> r) {
    if (!r) throw std::runtime_error(r.error());
    return std::move(*r);
}

class Store {
public:
    static Result<Store> open(const std::string& path);  // ":memory:" for tests
    Store(Store&&) noexcept;
    Store& operator=(Store&&) noexcept;
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;
    ~Store();

    // One id sequence for requests and grants, so an id names one thing.
    Result<std::int64_t> next_id();

    Result<bool> begin();
    Result<bool> commit();  // durable at the next sync()
    Result<bool> rollback();
    // Rolls back the transaction open, if any, whatever went wrong in it
    // (a failed statement may have ended it already).
    void abandon();
    // Makes every commit so far durable (one fsync of the write-ahead log);
    // nothing to do when nothing changed since the last call.  The daemon
    // calls it before it answers a client and once a tick.
    Result<bool> sync();
    // Copies the write-ahead log into the database file once it holds
    // kCheckpointFrames or more, and starts it again when it could copy it
    // all.  The daemon calls it once a tick: a commit checkpoints only past
    // kWalHardFrames, so that a decision's commit never pays SQLite's
    // automatic checkpoint between its audit record and its map write
    // (store_wal.cpp).  The frames of the log in the database file after it
    // (SQLite's pnCkpt); 0 when below the mark, with nothing done.
    Result<int> checkpoint();
    // The log's length in frames at this connection's last commit; 0 after a
    // complete checkpoint, and for a database in memory.
    int wal_frames() const { return wal_frames_ ? *wal_frames_ : 0; }
    static constexpr int kCheckpointFrames = 1000;  // SQLite's own mark
    static constexpr int kWalHardFrames = 16000;    // about 64 MiB of log

    Result<bool> put_request(const RequestRow& r);  // insert or replace
    Result<std::optional<RequestRow>> request(std::int64_t id);
    Result<std::vector<RequestRow>> requests(const std::string& state_or_all, int limit);

    // Pending requests whose request_ttl ran out at `now_wall_us`.
    Result<std::vector<RequestRow>> requests_due(std::int64_t now_wall_us);
    // Pending requests of boot `boot_id` whose request_ttl ran out at
    // `now_boot_ns` (CLOCK_BOOTTIME).
    Result<std::vector<RequestRow>> requests_due_boot(const std::string& boot_id, std::uint64_t now_boot_ns);
    // Active grants and pending requests of the account (uid, user).
    Result<std::vector<GrantRow>> active_grants_of(std::uint32_t uid, const std::string& user);
    Result<std::vector<RequestRow>> pending_requests_of(std::uint32_t uid, const std::string& user);
    // The distinct (uid, user) pairs holding an active grant or a pending
    // request, after (uid, user) in that order, at most `limit`.
    Result<std::vector<std::pair<std::uint32_t, std::string>>> accounts_after(std::uint32_t uid,
                                                                              const std::string& user,
                                                                              int limit);
    // A number kept in the meta table (e.g. the wall clock at the last stop).
    Result<std::optional<std::int64_t>> meta(const std::string& key);
    Result<bool> set_meta(const std::string& key, std::int64_t value);
    Result<std::int64_t> count_requests(const std::string& state);
    Result<std::int64_t> count_grants(const std::string& state);

    // Keys of grant documents whose signatures the fleet agent checked
    // (fleet/verified.h, which writes them in a transaction of its own).
    Result<bool> each_verified_key(const std::function<void(std::string)>& fn);
    Result<bool> put_verified_key(const std::string& key);
    Result<bool> delete_verified_key(const std::string& key);
    Result<bool> clear_verified_keys();

    Result<bool> put_grant(const GrantRow& g);
    Result<std::optional<GrantRow>> grant(std::int64_t id);
    Result<std::vector<GrantRow>> grants(const std::string& state_or_all, int limit);
    // The same rows one at a time, without holding them all (start-up reads
    // every active grant).  `fn` must not write to the store.
    Result<bool> each_grant(const std::string& state_or_all, int limit,
                            const std::function<void(GrantRow&)>& fn);
    // Grants active in another boot than `boot_id`: their CLOCK_BOOTTIME
    // expiry recomputed from the wall-clock time left (none left: now) and
    // moved to this boot.  How many changed.
    Result<int> rebase_grants(const std::string& boot_id, std::uint64_t now_boot_ns,
                              std::int64_t now_wall_us);
    // Moves active grant `id` to boot `boot_id` with these ends (Workflow::rebase_boot).
    Result<bool> rebase_grant(std::int64_t id, const std::string& boot_id, std::uint64_t expires_boot_ns,
                              std::int64_t expires_us, std::uint64_t warn_boot_ns);
    // Active grants whose expiry_warning is due at `now_boot_ns` (CLOCK_BOOTTIME
    // of `boot_id`), at most `limit`; and marks one as warned.
    Result<std::vector<GrantRow>> grants_to_warn(const std::string& boot_id, std::uint64_t now_boot_ns,
                                                 int limit);
    Result<bool> set_warned(std::int64_t id);
    // Grants of `kind` started at or after `since_wall_us`, whatever their
    // state, newest first.
    Result<std::vector<GrantRow>> grants_of_kind(const std::string& kind, std::int64_t since_wall_us,
                                                 int limit);
    // Active grants whose CLOCK_BOOTTIME expiry is at or before `now_boot_ns`.
    Result<std::vector<GrantRow>> grants_due(std::uint64_t now_boot_ns);
    // CLOCK_BOOTTIME of the soonest end of an active grant, if there is one.
    Result<std::optional<std::uint64_t>> next_expiry();
    // The active grant for one principal and port, if any: with `src` empty the
    // local user `uid`; otherwise the remote source `src`, whoever asked for it
    // (the kernel key is address, port and protocol, so there is one per source).
    Result<std::optional<GrantRow>> active_grant(std::uint32_t uid, const std::string& src,
                                                 std::uint16_t port, Proto proto);

    // Pending requests of one user, and of one user for one port.
    Result<std::int64_t> count_pending(std::uint32_t uid);
    Result<std::int64_t> count_pending(std::uint32_t uid, std::uint16_t port, Proto proto);
    // One page of list: rows in `state` ("all": any) with an id below
    // `before` (0: from the newest), newest first; and how many there are.
    Result<std::vector<RequestRow>> requests_before(const std::string& state, std::int64_t before, int limit);
    Result<std::int64_t> count_requests_before(const std::string& state, std::int64_t before);
    Result<std::vector<GrantRow>> grants_before(const std::string& state, std::int64_t before, int limit);
    Result<std::int64_t> count_grants_before(const std::string& state, std::int64_t before);
    // Deletes up to `limit` decided requests (whose grant, if any, ended) and
    // up to `limit` ended grants decided or ended before `before_wall_us`;
    // how many rows went.  Pending requests and active grants stay.
    Result<int> prune(std::int64_t before_wall_us, int limit);

private:
    explicit Store(sqlite3* db) : db_(db) { stmts_.db = db; }
    void exec(const char* sql);
    void watch_wal();    // replaces SQLite's automatic checkpoint (store_wal.cpp)
    void unwatch_wal();  // before the connection closes
    // schema 1 -> 2: src columns, indexes that serve active_grant; 2 -> 3: kind columns;
    // 3 -> 4: requests' approver_uids, deadline_boot_ns and boot_id; 4 -> 5:
    // grants' warn_boot_ns, requests' extends; 5 -> 6: requests'
    // approver_token_groups
    void migrate();
    sqlite3* db_ = nullptr;
    StmtCache stmts_;
    std::int64_t synced_changes_ = 0;  // sqlite3_total_changes64 at the last sync()
    // Written by the WAL hook, which holds its address: on the heap, so that
    // it stays put when the Store moves.
    std::unique_ptr<int> wal_frames_ = std::make_unique<int>(0);
};

}  // namespace jg
