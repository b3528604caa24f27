#pragma once
// The node agent's decisions (design.md §7), on the daemon's main loop:
// what etcd says (the watcher's batches) becomes this node's view of the
// fleet, and the grants meant for this node become exactly what its store
// and maps hold.  Level-triggered: a snapshot reconciles every grant; a
// batch of changes only those it names.  A grant is applied once: one
// this node ended (revoked, expired, cut off) is never put back.  Every
// document is untrusted: one that does not parse is refused with a record
// (grant_rejected, policy_rejected) and changes nothing.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "core/clock.h"
#include "core/policy.h"
#include "core/workflow.h"
#include "fleet/precheck.h"
#include "fleet/trust.h"
#include "fleet/verified.h"
#include "fleet/view.h"
#include "fleet/watcher.h"

namespace jg::fleet {

class Agent {
public:
    struct Config {
        std::string prefix;
        std::string node;
        Labels labels;
        std::int64_t grace_s = 15;
        std::string boot_id;
    };
    // A new fleet policy version that parsed and verified (`signed_doc`: as
    // etcd held it, signature included): the daemon adopts it (the node's
    // ports, the ledger's) or says why not (false).
    using OnPolicy = std::function<bool(const PolicyDoc&, const Policy& ports, const json& signed_doc)>;

    Agent(Config c, const Trust& trust, Workflow& local, Store& mirror, AuditSink& audit, Clock& clock,
          Directory& dir, OnPolicy on_policy)
        : c_(std::move(c)),
          trust_(trust),
          local_(local),
          mirror_(mirror),
          audit_(audit),
          clock_(clock),
          dir_(dir),
          on_policy_(std::move(on_policy)) {}

    const FleetView& view() const { return view_; }
    // The policy version the node runs (set at start from the saved copy,
    // `signed_doc` as it was saved: null when it carries no signature).
    void set_policy_version(std::int64_t v, json signed_doc = nullptr) {
        policy_version_ = v;
        running_signed_ = std::move(signed_doc);
    }
    // [fleet] signers changed (agent_trust.cpp): the running policy version
    // is judged again at once, and every document held is verified again
    // at the next full read (the daemon asks the watcher for one); until
    // then nothing new is applied.
    void signers_changed();
    // Why the policy version this node runs is not trusted (empty: it is).
    // While it is not, its ports stay protected (dropping them would open
    // them) but no new grant is applied here or decided here.
    const std::string& policy_distrust() const { return policy_distrust_; }
    std::int64_t policy_version() const { return policy_version_; }
    // The node's policy changed (a new version adopted): every grant is
    // judged again at the next batch or tick.
    void policy_changed() { recheck_all_ = true; }

    void on_batch(Batch& b);
    // Grant signatures checked with Ed25519 since start, those fleet/verified.h
    // spared (checked before, the same bytes under the same signers), and
    // the checks kept.
    std::uint64_t signatures_checked() const { return signatures_checked_; }
    std::uint64_t signatures_spared() const { return signatures_spared_; }
    std::size_t checks_kept() const { return verified_.size(); }
    // Once a second: the partition's records and, for strict ports, its end.
    // `outage`: the watcher's count of up->down changes (Watcher::outages),
    // so that a link that came back and went again between two ticks ends
    // the first outage (fleet_reconnected) and starts grace again.
    void tick(bool connected, const std::string& why, std::uint64_t outage = 0);
    // The ack document when it changed since the last call (or is due again).
    std::optional<std::string> take_ack();
    // The node's signed audit heads (core/audit_witness.h) every ack from
    // now on carries ({"audit_head", "audit_open"}); the next take_ack()
    // gives one.
    void set_audit_heads(json fields) {
        audit_heads_ = std::move(fields);
        ack_dirty_ = true;
    }

private:
    void absorb_put(const KeyValue& kv, std::set<std::int64_t>& dirty, bool& relevant);
    // Whether grant document `kv` is the version held before this full read
    // (checked when it came; unless the signers changed since).
    bool held_as_is(std::int64_t id, const KeyValue& kv) const;
    // The grant documents of a large batch checked on every core first
    // (fleet/precheck.h), into checked_; checked(kv) takes one out, or
    // checks it now.
    void precheck_grants(const Batch& b);
    CheckedDoc checked(const KeyValue& kv);
    void absorb_delete(const KeyValue& kv, std::set<std::int64_t>& dirty, bool& relevant);
    void node_info(const std::string& node, const std::string& kind, const KeyValue* kv);
    void adopt_policy(const KeyValue& kv);
    // Whether the running policy version still verifies (policy_distrust_
    // set, with a policy_rejected record, when it stopped to).
    void judge_running_policy();
    // Why a verified grant document `d` may not replace what this node saw
    // of it (`held`: its view's version): an ended grant never starts again.
    std::optional<std::string> replayed(const GrantDoc& d, const Held<GrantDoc>* held) const;
    // Makes the store and maps say what the view says about grant `id`.
    void reconcile(std::int64_t id);
    // Why grant doc g is not for this node (empty: it is), whether only
    // the user name failed (unresolved), and whether no decision under the
    // policy could have made it (refused: recorded).
    std::string not_here(const GrantDoc& g, bool& unresolved, bool& refused) const;
    // Grant `here`, applied on this node, whose document (held) names another
    // end (jitgate extend): that end here too, with an extend record
    // (agent_extend.cpp).
    void move_end(const GrantRow& here, const Held<GrantDoc>& held);
    void end_here(GrantRow& row, const std::string& state, const std::string& by, std::int64_t decided_us,
                  const std::string& reason = {});
    // A refused document, recorded once per (key, mod_revision) with the
    // signer `doc` names, and counted (the ack's `rejected`); past
    // kRejectsPerBatch in one batch, counted into close_rejects()'s record.
    void reject(const char* type, const KeyValue& kv, const std::string& why, const json* doc = nullptr);
    // The batch's refusals not recorded one by one, as one record.
    void close_rejects();
    static constexpr int kRejectsPerBatch = 100;
    static constexpr std::size_t kMaxRejectedRemembered = 4096;  // (key, revision) pairs
    int batch_rejects_ = 0;
    std::uint64_t batch_rejects_counted_ = 0;
    std::vector<std::string> batch_rejects_keys_;  // the first few counted, for the record
    // Whether this node applied grant g as it is (and still holds it).
    bool applied_as(const GrantRow& g) const;
    void cut_strict_ports();
    // The user database's answer for `user`, asked once per batch.
    std::optional<std::uint32_t> uid_of(const std::string& user) const;

    Config c_;
    const Trust& trust_;
    Workflow& local_;
    Store& mirror_;
    AuditSink& audit_;
    Clock& clock_;
    Directory& dir_;
    OnPolicy on_policy_;
    FleetView view_;
    std::int64_t policy_version_ = 0;
    json running_signed_;          // the running version's document, signature included (null: unknown)
    std::string policy_distrust_;  // see policy_distrust()
    // The signers changed and the full read that verifies everything again
    // has not come yet: nothing new is applied, the ack does not move.
    bool reverify_ = false;
    bool recheck_all_ = false;
    std::set<std::int64_t> unresolved_;
    mutable std::map<std::string, std::optional<std::uint32_t>> uids_;
    std::set<std::pair<std::string, std::int64_t>> rejected_;
    std::int64_t rejected_count_ = 0;  // documents refused since start (the ack's `rejected`)
    // During a full read: the grants held before it, by id.
    std::map<std::int64_t, Held<GrantDoc>> prev_grants_;
    std::map<std::int64_t, Held<RequestDoc>> prev_requests_;
    // During one batch: its grant documents checked ahead, by address in
    // the batch (emptied when a batch starts and when it ends).
    std::map<const KeyValue*, CheckedDoc> checked_;
    VerifiedDocs verified_;
    std::uint64_t signatures_checked_ = 0;
    std::uint64_t signatures_spared_ = 0;
    bool verified_failing_ = false;  // its save failed: said once
    // The kept checks written (once a tick).
    void save_verified();
    // Grants whose key a batch deleted (ended with a record saying so).
    std::set<std::int64_t> deleted_;
    bool ack_dirty_ = false;
    json audit_heads_;  // null until the node signed one
    std::int64_t ack_written_us_ = 0;
    // Partition: since when (wall us) etcd has not answered; strict ports cut.
    std::optional<std::int64_t> down_since_us_;
    std::uint64_t down_outage_ = 0;  // the outage down_since_us_ counts from
    bool strict_cut_ = false;
    bool ever_connected_ = false;
    std::optional<std::int64_t> started_us_;
    bool seeded_ = false;  // ended grants of the mirror remembered (view_.remember)
    // The revision up to which the maps say what etcd says (the ack's).
    std::int64_t applied_revision_ = 0;
};

}  // namespace jg::fleet
