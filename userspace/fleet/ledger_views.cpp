// What the fleet shows, read from etcd and this node's view: a grant's
// state on each of its target nodes (confirm, for --wait and the web page)
// and the table of nodes (jitgate nodes).  Nothing here writes.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "core/protocol.h"
#include "fleet/ledger.h"

namespace jg::fleet {

Reply Ledger::confirm(const Caller&, const ConfirmArgs& a) {
    std::optional<GrantDoc> g;
    // Not before the grant's own last change, whatever the caller says.
    std::int64_t revision = a.revision;
    if (auto it = view_.grants.find(a.id); it != view_.grants.end()) {
        g = it->second.doc;
        revision = std::max(revision, it->second.mod_revision);
    }
    if (!g) {
        // Decided a moment ago: the watch may not have brought it yet.
        auto kv = etcd_.get(grant_key(c_.prefix, a.id));
        if (!kv) return unreachable("confirm", kv.error());
        if (!*kv) return Reply::fail(code::kNotFound, fmt::format("there is no grant {}", a.id));
        revision = std::max(revision, (*kv)->mod_revision);
        auto j = parse_object((*kv)->value, "grant document");
        if (j)
            if (auto why = trust_.refusal(kSigGrant, *j))
                return Reply::fail(code::kRefused,
                                   fmt::format("grant {}'s document in etcd is not signed by a node [fleet] "
                                               "signers lists: {}",
                                               a.id, *why));
        auto d = j ? parse_grant_json(*j) : Result<GrantDoc>(err(j.error()));
        if (!d)
            return Reply::fail(code::kInternal,
                               fmt::format("grant {}'s document in etcd is not valid: {}", a.id, d.error()));
        g = *d;
    }
    json nodes = json::array();
    bool complete = true;
    for (const auto& name : targets_of(*g)) {
        const NodeInfo& n = view_.nodes.at(name);
        std::string state = "pending";
        if (n.applied_revision >= revision) {
            state = "applied";
            if (n.ack && n.ack->contains("unresolved") && (*n.ack)["unresolved"].is_array())
                for (const auto& u : (*n.ack)["unresolved"])
                    if (u.is_number_integer() && u.get<std::int64_t>() == a.id) state = "unresolved";
        }
        complete = complete && state != "pending";
        nodes.push_back({{"node", name}, {"state", state}, {"alive", n.alive}});
    }
    return Reply::success(
        {{"grant_id", a.id}, {"revision", revision}, {"nodes", nodes}, {"complete", complete}});
}

Reply Ledger::nodes(const Caller&) {
    auto regs = etcd_.get_prefix(c_.prefix + "/nodes/");
    if (!regs) return unreachable("nodes", regs.error());
    auto acks = etcd_.get_prefix(c_.prefix + "/acks/", regs->revision);
    if (!acks) return unreachable("nodes", acks.error());
    std::map<std::string, json> out;
    const std::int64_t now = clock_.wall_us();
    auto entry = [&](const std::string& node) -> json& {
        json& e = out[node];
        if (e.is_null())
            e = {{"node", node},          {"labels", json::object()}, {"alive", false},
                 {"applied_revision", 0}, {"lag", nullptr},           {"policy_version", 0},
                 {"grants", 0},           {"ack_age_s", nullptr},     {"rejected", 0}};
        return e;
    };
    auto labels_of = [](const json& j) {
        json l = json::object();
        if (j.contains("labels") && j["labels"].is_object())
            for (auto& [k, v] : j["labels"].items())
                if (valid_fleet_name(k) && v.is_string() && valid_fleet_name(v.get<std::string>())) l[k] = v;
        return l;
    };
    for (const auto& kv : acks->kvs) {
        const KeyName k = parse_key(c_.prefix, kv.key);
        json j = parse_json_bounded(kv.value);
        // Only what the node itself signed (anyone can write etcd).
        if (k.kind != "acks" || ack_refusal(trust_, k.node, j)) continue;
        json& e = entry(k.node);
        e["labels"] = labels_of(j);
        if (j.value("applied_revision", json()).is_number_integer()) {
            e["applied_revision"] = j["applied_revision"];
            // Behind the last change of a grant or the policy this node saw
            // (acks and registrations move the revision too, but ask nothing).
            e["lag"] =
                std::max<std::int64_t>(0, view_.changed_revision - j["applied_revision"].get<std::int64_t>());
        }
        if (j.value("policy_version", json()).is_number_integer()) e["policy_version"] = j["policy_version"];
        if (j.value("grants", json()).is_number_integer()) e["grants"] = j["grants"];
        if (j.value("rejected", json()).is_number_integer()) e["rejected"] = j["rejected"];
        if (j.value("time_us", json()).is_number_integer())
            e["ack_age_s"] = std::max<std::int64_t>(0, (now - j["time_us"].get<std::int64_t>()) / 1000000);
    }
    for (const auto& kv : regs->kvs) {
        const KeyName k = parse_key(c_.prefix, kv.key);
        json j = parse_json_bounded(kv.value);
        if (k.kind != "nodes" || !j.is_object()) continue;
        json& e = entry(k.node);
        e["alive"] = true;
        if (e["labels"].empty()) e["labels"] = labels_of(j);
    }
    json list = json::array();
    for (auto& [name, e] : out) list.push_back(std::move(e));
    return Reply::success({{"nodes", list}, {"revision", regs->revision}});
}

}  // namespace jg::fleet
