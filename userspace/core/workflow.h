#pragma once
// Requests, approvals, grants, revocation and expiry: the decisions of
// design.md §2, independent of BPF (maps are reached through GrantSink) and
// of the system's user database (reached through Directory).
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/keys.h"
#include "core/limits.h"
#include "core/policy.h"
#include "core/store.h"

namespace jg {

using json = nlohmann::json;

struct Caller {
    std::uint32_t uid = 0;
    std::int32_t pid = 0;
    std::string user;  // resolved name, or the uid as text
};

class Directory {
public:
    virtual ~Directory() = default;
    virtual std::optional<std::string> user_name(std::uint32_t uid) = 0;
    // Group membership from the system's group database, resolved now.
    virtual bool in_group(std::uint32_t uid, const std::string& user, const std::string& group) = 0;
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
    virtual Result<bool> put(const GrantRow& g) = 0;  // error when the map is full
    virtual void remove(const GrantRow& g) = 0;       // only if the map still holds g.id
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
    virtual void flush() {}
};

class Clock {
public:
    virtual ~Clock() = default;
    virtual std::uint64_t boot_ns() = 0;
    virtual std::int64_t wall_us() = 0;
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

class Workflow {
public:
    Workflow(Store& store, Directory& dir, GrantSink& sink, AuditSink& audit, Clock& clock,
             std::string boot_id);

    void set_policy(std::shared_ptr<const Policy> p) { policy_ = std::move(p); }
    const Policy& policy() const { return *policy_; }

    Reply request(const Caller& c, const json& args);
    Reply approve(const Caller& c, const json& args);
    Reply deny(const Caller& c, const json& args);
    Reply revoke(const Caller& c, const json& args);
    Reply list(const Caller& c, const json& args);
    // Grants at once, no approver, within the port's break_glass_max, to
    // whom its break_glass list names (anyone when it has none); the reason
    // is mandatory. Recorded as a break_glass record for review.
    Reply break_glass(const Caller& c, const json& args);
    // One request as request_json, whoever asks (list shows everyone's too).
    Reply show(const Caller& c, const json& args);

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
        if (!next_expiry_) next_expiry_ = store_.next_expiry();
        return *next_expiry_;
    }
    // On start: re-bases grants made in an earlier boot onto this boot's
    // CLOCK_BOOTTIME (by the wall clock).  The daemon then puts the store's
    // grants back into the maps and only then sweeps, so that ending the
    // expired ones cuts only their connections.
    void rebase_boot();

    // Deletes decided requests and ended grants older than [daemon]
    // retention, at most `max_rows` of each (the daemon calls it once a
    // tick); how many rows went.  The audit log keeps their records.
    int prune(int max_rows = 500);
    // Asked before each new request: why nothing new can be recorded now
    // (the disk is nearly full), or nothing.
    void set_space_check(std::function<std::optional<std::string>()> f) { space_check_ = std::move(f); }

    json request_json(const RequestRow& r);
    json grant_json(const GrantRow& g);

private:
    // The refusal of a new request by c on port p, if any: the request rate,
    // the caps on pending requests ([daemon] limits), the free space.
    std::optional<Reply> admit(const Caller& c, const PortPolicy& p, std::uint16_t port, Proto proto);
    // One page of list's `filter` ("pending", "active", "all") into out.
    std::optional<Reply> list_page(const std::string& filter, const json& args, json& out);
    bool is_approver(const Caller& c, const PortPolicy& p);
    // Whether c is the user `who`, or a member of the group `who`.
    // A request asked (port, protocol, duration, reason in r) by c: given a
    // fresh id, its requester and creation time, pending.
    void start_request(RequestRow& r, const Caller& c);
    bool matches(const Caller& c, const Principal& who);
    // Whole seconds until active grant g ends, by CLOCK_BOOTTIME.
    std::int64_t remaining_s(const GrantRow& g);
    // Grants request r (persisted with it). For a break-glass request (its
    // kind), `actor` is who broke the glass: the break_glass record is theirs.
    Reply grant_request(RequestRow& r, std::int64_t duration_s, const std::string& by,
                        const Caller* actor = nullptr);
    void end_grant(GrantRow& g, const std::string& state, const std::string& by, const Caller* actor);
    // Ends grants `gs` as `state` ("revoked", "expired") by `by`: stored,
    // out of the maps, the TCP connections they admitted cut (once for all),
    // then one record each with connections_ended.
    void end_grants(std::vector<GrantRow>& gs, const std::string& state, const std::string& by,
                    const Caller* actor);
    // Decides pending request r as `state` ("rejected" or "expired") by `by`,
    // stores it and records it: a reject or expire record by `actor` (with
    // none, about the requester) holding `details`. r.decision_reason is
    // stored as the caller left it.
    void close_request(RequestRow& r, const char* state, const std::string& by, const Caller* actor,
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
    RequestRate rate_;
    std::function<std::optional<std::string>()> space_check_;
    // next_expiry()'s answer while no grant changed; put_grant forgets it.
    std::optional<std::optional<std::uint64_t>> next_expiry_;
    void put_grant(const GrantRow& g) {
        store_.put_grant(g);
        next_expiry_.reset();
    }
};

}  // namespace jg
