#pragma once
// Requests, approvals, grants, revocation and expiry: the decisions of
// design.md §2, independent of BPF (maps are reached through GrantSink) and
// of the system's user database (reached through Directory). Operations
// take their typed arguments (core/operations.h), parsed once.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/kernel_grant.h"
#include "core/keys.h"
#include "core/limits.h"
#include "core/operations.h"
#include "core/policy.h"
#include "core/store.h"

namespace jg {

using json = nlohmann::json;

// How a caller proved who they are when it was not the socket's peer
// credentials: an OIDC ID token (design.md §8), already verified.
struct TokenAuth {
    std::string issuer;
    std::string subject;
    std::vector<std::string> groups;  // the groups claim: the caller's @groups, instead of NSS's
};

struct Caller {
    std::uint32_t uid = 0;
    std::int32_t pid = 0;
    std::string user;  // resolved name, or the uid as text
    // Set when the caller is the user of an ID token (the local account of
    // that name): its records say so (auth, issuer, subject).
    std::optional<TokenAuth> token = std::nullopt;
};

class Directory {
public:
    virtual ~Directory() = default;
    virtual std::optional<std::string> user_name(std::uint32_t uid) = 0;
    // The uid of account `user` (fleet: names travel, each node resolves
    // them); nullopt when there is no such account here.
    virtual std::optional<std::uint32_t> uid_of(const std::string& user) {
        (void)user;
        return std::nullopt;
    }
    // Group membership from the system's group database, resolved now.
    virtual bool in_group(std::uint32_t uid, const std::string& user, const std::string& group) = 0;
    // Whether uid is still the account `user` (a uid without an account is
    // named by its number, as Caller::user is): false when the uid now names
    // another account or a number names an account; nullopt when the user
    // database could not answer (the caller decides what that means).
    virtual std::optional<bool> is_account(std::uint32_t uid, const std::string& user) {
        return user_name(uid).value_or(std::to_string(uid)) == user;
    }
};

// A TCP connection the kernel ended because no grant covers it any more.
struct CutConnection {
    std::int64_t grant_id = 0;  // the grant that admitted it, 0 when not known
    bool local = true;          // a local user's connection; else a remote peer's
    std::uint32_t uid = 0;      // local: the user it was cut for
    Addr16 peer{};              // the other end (remote: the principal)
    std::uint16_t port = 0;     // the protected port
};

// Writes grants into the kernel; the store has them already.
class GrantSink {
public:
    virtual ~GrantSink() = default;
    virtual Result<bool> put(const KernelGrant& g) = 0;  // error when the map is full
    virtual void remove(const KernelGrant& g) = 0;       // only if the map still holds g.id
    // Ends the TCP connections no grant covers any more, on ports whose
    // grants end by cutting (not drain, not audit): the ones it ended.
    virtual std::vector<CutConnection> cut_connections() { return {}; }
};

class AuditSink {
public:
    virtual ~AuditSink() = default;
    // `record` holds type and context; the sink adds ts, seq and hashes.
    virtual void emit(json record) = 0;
    // Records emitted may be written later, in a batch: this writes them now.
    // False when they cannot be written: the caller changes nothing more.
    virtual bool flush() { return true; }
};

struct Reply {
    bool ok = true;
    json result = json::object();
    std::string code;
    std::string message;
    static Reply fail(std::string c, std::string m) {
        return Reply{false, json::object(), std::move(c), std::move(m)};
    }
    static Reply success(json r) { return Reply{true, std::move(r), {}, {}}; }
};

// The meta key of the wall clock (us) when jitgated last stopped.
inline constexpr const char* kMetaLastStop = "last_stop_wall_us";

class Workflow {
public:
    // Adds fields to a record about a grant (end_fleet_grants).
    using Decorate = std::function<void(const GrantRow&, json&)>;

    Workflow(Store& store, Directory& dir, GrantSink& sink, AuditSink& audit, Clock& clock,
             std::string boot_id);

    void set_policy(std::shared_ptr<const Policy> p) { policy_ = std::move(p); }
    // Counts requests against `r` rather than its own buckets (the fleet's
    // ledger runs a Workflow per decision; the rate is the node's).
    void share_rate(RequestRate& r) { rate_ = &r; }
    const Policy& policy() const { return *policy_; }

    Reply request(const Caller& c, const RequestArgs& args);
    Reply approve(const Caller& c, const ApproveArgs& args);
    Reply deny(const Caller& c, const DenyArgs& args);
    Reply revoke(const Caller& c, const RevokeArgs& args);
    Reply list(const Caller& c, const ListArgs& args);
    // Grants at once, no approver, within the port's break_glass_max, to
    // whom its break_glass list names (anyone when it has none); the reason
    // is mandatory. Recorded as a break_glass record for review.
    Reply break_glass(const Caller& c, const BreakGlassArgs& args);
    // One request as request_json, to whom may_see it.
    Reply show(const Caller& c, const ShowArgs& args);
    // More time on an active grant, asked by its holder: a new request
    // (its `extends` names the grant) decided as any other (approvers,
    // approvals_required, self_approve, auto_approve), within the port's
    // max_duration counted from the grant's start.  On approval the
    // grant's end moves in place (store, map entry, timers): its
    // connections stay up.  Recorded as an extend record.
    Reply extend(const Caller& c, const ExtendArgs& args);
    // Writes the expiry_warning records due now (warn_before before a
    // grant's end), each once: marked in the store once written.  How many.
    int warn_expiring(int max_grants = 256);

    // Who may read everything (list, show, status, audit): root and the
    // policy's [daemon] auditors.  The one rule for all of them.
    bool sees_all(const Caller& c);
    // Whether request or grant record `row` (its request_json or grant_json)
    // concerns c: their own (the audit rule, belongs_to) or one of a port c
    // approves.  list, show and status show the others only to sees_all.
    // `cache`, when given, keeps whether c approves each port across rows.
    using ApproverCache = std::map<std::pair<std::uint16_t, std::string>, bool>;
    bool concerns(const Caller& c, const json& row, ApproverCache* cache);

    // Approvals whose approver no longer qualifies (removed from approvers
    // or from the group, account gone) are taken off pending requests, each
    // recorded as approval_lapsed; none is granted by this.  After a reload.
    // Returns how many lapsed.
    int recheck_approvals();
    // Ends the active grants (revoked, ended_by "account_removed") and
    // rejects the pending requests of accounts whose uid no longer maps to
    // the stored name (deleted, or the uid given to someone else): at most
    // `max_accounts` accounts checked per call, continuing where the last
    // call stopped.  Returns how many grants and requests ended.
    int end_removed_accounts(int max_accounts);

    // Ends grants and pending requests whose time is up; returns how many.
    int sweep();
    // After a policy change: revokes the grants and rejects the pending
    // requests of ports the policy no longer protects; returns how many.
    int end_unprotected();
    // Cut connections that no grant ended since the last call accounts for
    // (sockets older than the grant maps, or whose owner changed).
    std::vector<CutConnection> take_stray_cuts() { return std::exchange(stray_cuts_, {}); }
    // CLOCK_BOOTTIME of the soonest grant end, if any grant is active.
    // Asked on every turn of the daemon's loop, so kept until a grant changes.
    std::optional<std::uint64_t> next_expiry() {
        if (!next_expiry_) next_expiry_ = value_or_throw(store_.next_expiry());
        return *next_expiry_;
    }
    // On start: re-bases grants and pending requests made in an earlier
    // boot onto this boot's CLOCK_BOOTTIME by the wall-clock time left,
    // capped by their length and the port's max_duration.  When the wall
    // clock is before a grant's start or the last stop of the daemon
    // (kMetaLastStop), the time left is unknown: the grant is due now and
    // the sweep ends it with ended_by "clock_unknown" (the request is
    // expired at once).  The daemon then puts the store's grants back into
    // the maps and only then sweeps, so that ending the expired ones cuts
    // only their connections.  Returns what it did, for the daemon's log
    // (empty when nothing was unknown).
    std::string rebase_boot();
    // Remembers the wall clock now as the last stop (kMetaLastStop): at a
    // clean stop, and once a minute while running (the last time seen alive,
    // which is what a crash leaves).
    void record_stop();

    // Fleet (design.md §7): grant g, decided in etcd, applied on this node:
    // stored, then written to the maps (an error when the map is full, the
    // row then stored ended).  No record: the node agent writes grant_applied.
    Result<bool> apply_fleet_grant(const GrantRow& g);
    // Fleet: active grant `applied`, held by this node, whose document's end
    // moved to `expires_us` (an extension decided in etcd): converted to this
    // node's CLOCK_BOOTTIME as at apply, stored, its map entry updated in
    // place (its connections stay up), its expiry_warning armed again for
    // the new end.  Refused (an error, nothing changed) when the grant's
    // deadline here has passed: an extension never brings an ended grant
    // back.  No record: the node agent writes the extend record.
    Result<bool> move_fleet_end(const GrantRow& applied, std::int64_t expires_us);
    // Fleet: grants this node applied that the fleet ended (revoked, no
    // longer for this node, a strict port cut off): stored as `state` by
    // `by`, out of the maps, their connections cut, one `type` record each
    // (e.g. revoke_applied) with what `decorate` adds.
    Result<bool> end_fleet_grants(std::vector<GrantRow>& gs, const std::string& state, const std::string& by,
                                  const char* type, const Decorate& decorate) {
        return end_grants(gs, state, by, nullptr, type, decorate);
    }

    // Deletes decided requests and ended grants older than [daemon]
    // retention, at most `max_rows` of each (the daemon calls it once a
    // tick); how many rows went.  The audit log keeps their records.
    int prune(int max_rows = 500);
    // Asked before each new request: why nothing new can be recorded now
    // (the disk is nearly full), or nothing.
    void set_space_check(std::function<std::optional<std::string>()> f) { space_check_ = std::move(f); }

    // (request_json throws when the store cannot be read: for the daemon's
    // status; requests use request_view.)
    json request_json(const RequestRow& r) { return value_or_throw(request_view(r)); }
    json grant_json(const GrantRow& g);

private:
    // A remote principal is named in every record about it; a local one has no src.
    static void put_src(json& j, const std::string& src);
    // The fields that name request r in a record: the request, its port, its
    // requester and, for a remote principal, its source.
    static void put_request_fields(json& ev, const RequestRow& r);
    // A store error as the reply a request gets ("jitgated could not
    // complete OP: ..."), the transaction open rolled back.
    Reply store_failed(const char* op, const std::string& why);
    // request_json, or the store's error reading its grant.
    Result<json> request_view(const RequestRow& r);
    // request_view of r as a successful reply, or its store error as op's.
    Reply request_reply(const char* op, const RequestRow& r);
    // sweep's work, its store error returned.
    Result<int> expire_due();
    // The approvals of r whose approver no longer qualifies for port p: taken
    // off r (not stored), one approval_lapsed record each.  How many.
    // `current`, when given, is the approver deciding now: their approval is
    // checked as them (a token's groups), the others by the user database.
    int drop_lapsed(RequestRow& r, const PortPolicy& p, const Caller* current = nullptr);
    // The port's approver groups an ID token puts its user in (kept with the
    // approval for drop_lapsed); nullopt for a caller without a token.
    std::optional<std::vector<std::string>> token_approver_groups(const Caller& c, const PortPolicy& p);
    // Whether pending request r ran out of time (by CLOCK_BOOTTIME in this boot).
    bool overdue(const RequestRow& r);
    // The seconds grant g was usable by CLOCK_BOOTTIME when it ends now.
    std::int64_t used_s(const GrantRow& g);
    // Rebase of one grant of another boot (rebase_boot): false when its
    // time left is unknown.
    bool rebase_grant(GrantRow& g, std::int64_t now_wall, std::int64_t last_stop);
    // The refusal of a new request by c on port p, if any: the request rate,
    // the caps on pending requests ([daemon] limits), the free space.
    std::optional<Reply> admit(const Caller& c, const PortPolicy& p, std::uint16_t port, Proto proto);
    // One page of list's filter ("pending", "active", "all", "default") into
    // out, scoped to what c may see (sees_all, concerns).
    // A failed Reply when the state store could not be read.
    std::optional<Reply> list_page(const Caller& c, const ListArgs& args, json& out);
    bool is_approver(const Caller& c, const PortPolicy& p);
    // Whether c is the user `who`, or a member of the group `who`.
    // A request asked (port, protocol, duration, reason in r) by c: given a
    // fresh id, its requester and creation time, pending.
    Result<bool> start_request(RequestRow& r, const Caller& c);
    bool matches(const Caller& c, const Principal& who);
    // Whole seconds until active grant g ends, by CLOCK_BOOTTIME.
    std::int64_t remaining_s(const GrantRow& g);
    // The active grant `id` request r asks for, starting now for duration_s.
    GrantRow new_grant(const RequestRow& r, std::int64_t id, std::int64_t duration_s);
    // When grant g's expiry_warning is due (CLOCK_BOOTTIME): warn_before
    // before its end, if its end is further away than that now; else 0.
    std::uint64_t warn_at(const GrantRow& g);
    // Extends the grant extension request r names by duration_s (capped by
    // max_duration from the grant's start), r granted with it.
    Reply extend_grant(RequestRow& r, std::int64_t duration_s, const std::string& by);
    // Extension request r refused at its decision: rejected, recorded, and
    // the reply saying why.
    Reply refuse_extension(RequestRow& r, const char* op, const std::string& by, const std::string& why);
    // Grants request r (persisted with it). For a break-glass request (its
    // kind), `actor` is who broke the glass: the break_glass record is theirs.
    Reply grant_request(RequestRow& r, std::int64_t duration_s, const std::string& by,
                        const Caller* actor = nullptr);
    Result<bool> end_grant(GrantRow& g, const std::string& state, const std::string& by, const Caller* actor);
    // Ends grants `gs` as `state` ("revoked", "expired") by `by`: stored,
    // out of the maps, the TCP connections they admitted cut (once for all),
    // then one record each with connections_ended.
    // `type` (default: revoke or expire by state) names the records;
    // `decorate` adds fields to each.
    Result<bool> end_grants(std::vector<GrantRow>& gs, const std::string& state, const std::string& by,
                            const Caller* actor, const char* type = nullptr, const Decorate& decorate = {});
    // Decides pending request r as `state` ("rejected" or "expired") by `by`,
    // stores it and records it: a reject or expire record by `actor` (with
    // none, about the requester) holding `details`. r.decision_reason is
    // stored as the caller left it.
    Result<bool> close_request(RequestRow& r, const char* state, const std::string& by, const Caller* actor,
                               const json& details);
    // A record of `type` with the actor (uid, user, pid), when there is one.
    json base_event(const char* type, const Caller* actor);
    // A record about grant g: by `actor` or, with none, about its holder.
    json grant_event(const char* type, const GrantRow& g, const Caller* actor);

    Store& store_;
    Directory& dir_;
    GrantSink& sink_;
    AuditSink& audit_;
    Clock& clock_;
    std::string boot_id_;
    std::shared_ptr<const Policy> policy_ = std::make_shared<Policy>();
    std::vector<CutConnection> stray_cuts_;
    // Grants rebase_boot found with no knowable time left: the sweep ends them so.
    std::vector<std::int64_t> clock_unknown_;
    // Where end_removed_accounts goes on.
    std::pair<std::uint32_t, std::string> account_cursor_{0, ""};
    RequestRate own_rate_;
    RequestRate* rate_ = &own_rate_;
    std::function<std::optional<std::string>()> space_check_;
    // next_expiry()'s answer while no grant changed; put_grant forgets it.
    std::optional<std::optional<std::uint64_t>> next_expiry_;
    Result<bool> put_grant(const GrantRow& g) {
        next_expiry_.reset();
        return store_.put_grant(g);
    }
};

}  // namespace jg
