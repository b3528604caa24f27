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
    // Grants seen ended and requests seen decided, by id: their fixed fields
    // and the state, kept when the document is later deleted or refused, so
    // that an older version written back (active or pending again) is
    // refused even where no document of that id is held any more.
    struct Final {
        std::string user;
        std::uint16_t port = 0;
        std::int64_t since_us = 0;  // a grant's start_us, a request's created_us
        std::string state;
    };
    std::map<std::int64_t, Final> ended_grants, decided_requests;
    static constexpr std::size_t kMaxFinal = 65536;  // each map; the lowest ids go first

    void remember(const GrantRow& g) {
        remember_in(ended_grants, g.id, {g.user, g.port, g.start_us, g.state});
    }
    void remember(const RequestRow& r) {
        remember_in(decided_requests, r.id, {r.user, r.port, r.created_us, r.state});
    }
    // Why `now` may not be taken: a grant remembered ended that is active
    // again, a request remembered decided that is pending again.
    std::optional<std::string> replay_of(const GrantRow& now) const {
        auto it = ended_grants.find(now.id);
        if (now.state != "active" || it == ended_grants.end() ||
            !same(it->second, now.user, now.port, now.start_us))
            return std::nullopt;
        return "it is an older version of grant " + std::to_string(now.id) + ", which this node saw end (" +
               it->second.state + "): an ended grant never starts again (an old document written back)";
    }
    std::optional<std::string> replay_of(const RequestRow& now) const {
        auto it = decided_requests.find(now.id);
        if (now.state != "pending" || it == decided_requests.end() ||
            !same(it->second, now.user, now.port, now.created_us))
            return std::nullopt;
        return "it is an older version of request " + std::to_string(now.id) +
               ", which this node saw decided (" + it->second.state +
               "): a decided request is never pending again (an old document written back)";
    }

    // The nodes `sel` and a port's `hosts` both take, by name.
    std::vector<std::string> targets(const Selector& sel, const Labels& hosts) const {
        std::vector<std::string> out;
        for (const auto& [name, n] : nodes)
            if (sel.matches(name, n.labels) && labels_match(hosts, n.labels)) out.push_back(name);
        return out;
    }

private:
    static bool same(const Final& f, const std::string& user, std::uint16_t port, std::int64_t since_us) {
        return f.user == user && f.port == port && f.since_us == since_us;
    }
    static void remember_in(std::map<std::int64_t, Final>& m, std::int64_t id, Final f) {
        if (f.state == "active" || f.state == "pending") return;
        m[id] = std::move(f);
        if (m.size() > kMaxFinal) m.erase(m.begin());
    }
};

// Why request document `now` may not replace `was`, the version a node saw
// (fleet/agent_trust.cpp): a decided request is never pending again, so an
// old version written back into etcd cannot be approved a second time.
std::optional<std::string> reopened(const RequestRow& was, const RequestRow& now);

}  // namespace jg::fleet
