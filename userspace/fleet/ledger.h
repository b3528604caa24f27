#pragma once
// The fleet's decisions (design.md §7): request, approve, deny, revoke and
// break-glass decided by the same Workflow as on a single host, then made
// true in etcd by one transaction.
//
// Each operation runs the Workflow on a scratch store that holds the
// documents it concerns, read fresh from etcd, with their uids resolved on
// this node.  What the scratch store then holds differently becomes the
// documents the transaction writes, on condition that none of those read
// changed since (their mod_revision) and that the id counter is the one
// read.  Two approvers on two nodes at the same instant: one transaction
// wins, the other reads the request again and counts its approval on top,
// so nothing is counted twice and one grant is made.  The records the
// Workflow wrote are this node's once the transaction succeeded (a lost
// race writes none).  Nothing reaches a map here: each target node's agent
// applies the grant when its watch sees it.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/operations.h"
#include "core/policy.h"
#include "core/workflow.h"
#include "fleet/etcd_client.h"
#include "fleet/trust.h"
#include "fleet/view.h"

namespace jg::fleet {

class Ledger {
public:
    struct Config {
        std::string prefix;
        std::string node;
        std::string boot_id;
    };
    Ledger(Config c, EtcdClient& etcd, const FleetView& view, const Trust& trust, Directory& dir,
           Clock& clock, AuditSink& audit)
        : c_(std::move(c)),
          etcd_(etcd),
          view_(view),
          trust_(trust),
          dir_(dir),
          clock_(clock),
          audit_(audit) {}

    // Every port of the fleet policy (not only this node's), with this
    // node's [daemon] settings: a decision here may be for other nodes.
    void set_policy(std::shared_ptr<const Policy> p) { policy_ = std::move(p); }

    Reply request(const Caller& c, const RequestArgs& a);
    Reply break_glass(const Caller& c, const BreakGlassArgs& a);
    Reply approve(const Caller& c, const ApproveArgs& a);
    Reply deny(const Caller& c, const DenyArgs& a);
    Reply revoke(const Caller& c, const RevokeArgs& a);
    // More time on a grant (design.md §9): an extension request in etcd,
    // decided as any request (approve, deny, auto_approve); on approval the
    // grant document's end moves, and each target node's agent moves its
    // map entry's deadline in place.
    Reply extend(const Caller& c, const ExtendArgs& a);
    Reply list(const Caller& c, const ListArgs& a);
    Reply show(const Caller& c, const ShowArgs& a);
    // Requests this node took whose TTL ran out, and its grants whose time
    // is up, marked so in etcd (each document has one sweeper: its origin).
    // How many were swept; etcd errors wait for the next call.
    int sweep();
    // Which target nodes applied grant a.id as of a.revision (their acks).
    Reply confirm(const Caller& c, const ConfirmArgs& a);
    // The fleet's nodes as etcd has them now (design.md §7 JSON).
    Reply nodes(const Caller& c);
    // A new fleet policy version (root only), and the one in etcd
    // (fleet/policy_push.cpp).
    Reply policy_push(const Caller& c, const PolicyPushArgs& a);
    Reply policy_show(const Caller& c);

private:
    struct Scratch;
    // Fills the scratch store with what an operation reads; false when etcd failed (reply set).
    using Load = std::function<Result<bool>(Scratch&)>;
    using Run = std::function<Reply(Workflow&)>;
    // The operation on a scratch store, then its changes in one transaction
    // (retried on a conflict).  `writes`: false for a read-only operation.
    Reply decide(const char* op, const Load& load, const Run& run, const Extras& fresh, bool writes = true);
    // request and break_glass: the caller's name and targets checked, then decided.
    Reply ask(const char* op, const Caller& c, const AskArgs& ask, const std::optional<Selector>& on,
              const Run& run);
    // A document not read yet in this operation, fresh from etcd (nothing:
    // read already, or absent, which is then remembered as read).
    Result<std::optional<KeyValue>> fetch(Scratch& s, const std::string& key);
    Result<bool> load_request(Scratch& s, std::int64_t id);
    Result<bool> load_grant(Scratch& s, std::int64_t id);
    // The caller's pending requests and active grants for one port and
    // selector: what request's limits and replacement read.
    Result<bool> load_own(Scratch& s, const std::string& user, std::uint16_t port, const std::string& on);
    // The selector a request names, checked against the fleet: the refusal, if any.
    std::optional<Reply> target_refusal(const std::optional<Selector>& on, std::uint16_t port, Proto proto,
                                        Selector& out);
    std::vector<std::string> targets_of(const GrantDoc& g) const;
    // The fleet's nodes and their labels: the view's, or (fresh) read from etcd now.
    Result<std::map<std::string, Labels>> roster(bool fresh);
    Reply unreachable(const char* op, const std::string& why) const;
    // A document read that no listed signer wrote (design.md §7.3): recorded,
    // and the operation refused with one sentence (s.refused).
    Result<bool> distrust(Scratch& s, const KeyValue& kv, const std::string& what, const json& doc,
                          const std::string& why);

    Config c_;
    EtcdClient& etcd_;
    const FleetView& view_;
    const Trust& trust_;
    Directory& dir_;
    Clock& clock_;
    AuditSink& audit_;
    std::shared_ptr<const Policy> policy_ = std::make_shared<Policy>();
    RequestRate rate_;
};

}  // namespace jg::fleet
