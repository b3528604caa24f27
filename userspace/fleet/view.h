#pragma once
// What this node knows of the fleet's documents in etcd, as of one
// revision: kept by the node agent from its snapshots and watch events,
// read by the ledger (targets, the caller's own requests, list) and by
// confirm.  Only documents that parsed are here; the rest are refused
// where they arrive (fleet/agent).
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/selector.h"
#include "fleet/docs.h"

namespace jg::fleet {

template <typename Doc>
struct Held {
    Doc doc;
    std::int64_t mod_revision = 0;
};

struct NodeInfo {
    Labels labels;
    bool alive = false;       // its lease-bound registration exists
    std::optional<json> ack;  // its ack document, as read
    std::int64_t applied_revision = 0;
};

struct FleetView {
    std::int64_t revision = 0;  // the last revision applied from etcd
    // The last revision that changed a grant or the policy (what a node's
    // maps must catch up with; acks and registrations do not count).
    std::int64_t changed_revision = 0;
    std::map<std::int64_t, Held<RequestDoc>> requests;
    std::map<std::int64_t, Held<GrantDoc>> grants;
    std::map<std::string, NodeInfo> nodes;
    std::optional<Held<PolicyDoc>> policy;
    // Grants whose document in etcd stopped verifying (rewritten by someone
    // no listed signer vouches for): the last version that verified, by id.
    // A revocation of such a grant is written from it (fleet/ledger), so
    // that a spoiled document cannot make a grant unrevocable.
    std::map<std::int64_t, Held<GrantDoc>> spoiled;

    // The nodes `sel` and a port's `hosts` both take, by name.
    std::vector<std::string> targets(const Selector& sel, const Labels& hosts) const {
        std::vector<std::string> out;
        for (const auto& [name, n] : nodes)
            if (sel.matches(name, n.labels) && labels_match(hosts, n.labels)) out.push_back(name);
        return out;
    }
};

// Why request document `now` may not replace `was`, the version a node saw
// (fleet/agent_trust.cpp): a decided request is never pending again, so an
// old version written back into etcd cannot be approved a second time.
std::optional<std::string> reopened(const RequestRow& was, const RequestRow& now);

}  // namespace jg::fleet
